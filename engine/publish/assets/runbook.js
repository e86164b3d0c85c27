// Runbook pages and run pages (engine.publish): filters on the runs index and the home page,
// and step graphs drawn with mermaid, which is loaded only when a page opens one.
(function () {
  var script = document.currentScript;
  var mermaidUrl = script ? script.src.replace(/runbook\.js(\?.*)?$/, "mermaid.min.js") : "";
  var loading = null;
  var drawn = 0;

  function loadMermaid() {
    if (window.mermaid && !(window.mermaid instanceof Element)) {
      return Promise.resolve(window.mermaid);
    }
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = mermaidUrl;
        tag.onload = function () { resolve(window.mermaid); };
        tag.onerror = function () { loading = null; reject(new Error("mermaid did not load")); };
        document.head.appendChild(tag);
      });
    }
    return loading;
  }

  function draw(box) {
    if (box.getAttribute("data-drawn")) { return; }
    box.setAttribute("data-drawn", "1");
    box.textContent = "Drawing the graph…";
    loadMermaid().then(function (mermaid) {
      var dark = document.body.getAttribute("data-md-color-scheme") === "slate";
      mermaid.initialize({ startOnLoad: false, securityLevel: "strict",
        theme: dark ? "dark" : "default" });
      return mermaid.render("rb-graph-" + drawn++, box.getAttribute("data-graph"));
    }).then(function (result) {
      box.innerHTML = result.svg;
      if (result.bindFunctions) { result.bindFunctions(box); }
      // The page grew above a step the address points at: bring that step back into view.
      var target = stepOf(location.hash);
      if (target && (box.compareDocumentPosition(target) & Node.DOCUMENT_POSITION_FOLLOWING)) {
        target.scrollIntoView();
      }
    }).catch(function (error) {
      box.textContent = "The graph could not be drawn (" + error.message + ").";
    });
  }

  function stepOf(hash) {
    return hash && hash.indexOf("#step-") === 0 ?
      document.getElementById(decodeURIComponent(hash.slice(1))) : null;
  }

  // A node of the graph is a link to its step: go there (and say so in the address).
  function follow(event) {
    var link = event.target.closest && event.target.closest("a");
    var href = link && (link.getAttribute("href") || link.getAttribute("xlink:href"));
    var target = stepOf(href);
    if (!target) { return; }
    event.preventDefault();
    history.pushState(null, "", href);
    target.scrollIntoView();
  }

  function bindGraphs() {
    document.querySelectorAll("details.rb-graph").forEach(function (details) {
      var box = details.querySelector(".rb-graph-draw");
      if (!box || box.getAttribute("data-bound")) { return; }
      box.setAttribute("data-bound", "1");
      box.addEventListener("click", follow);
      if (details.open) { draw(box); }
      details.addEventListener("toggle", function () { if (details.open) { draw(box); } });
    });
  }

  // The runs index: only the rows matching the chosen runbook and status.
  function applyRunFilters() {
    var chosen = {};
    document.querySelectorAll("[data-rb-filter]").forEach(function (select) {
      chosen[select.getAttribute("data-rb-filter")] = select.value;
    });
    document.querySelectorAll(".rb-runs tbody tr").forEach(function (row) {
      var visible = Object.keys(chosen).every(function (key) {
        return !chosen[key] || row.getAttribute("data-" + key) === chosen[key];
      });
      row.style.display = visible ? "" : "none";
    });
  }

  // The home page: the runbooks whose text has every word typed, with the chosen tag.
  function applyHomeFilter() {
    var input = document.querySelector("[data-rb-home-text]");
    var select = document.querySelector("[data-rb-home-tag]");
    if (!input) { return; }
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var tag = select ? select.value : "";
    var shown = 0;
    document.querySelectorAll(".rb-home tbody tr").forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var tags = (row.getAttribute("data-tags") || "").split(" ");
      var visible = words.every(function (w) { return text.indexOf(w) !== -1; }) &&
        (!tag || tags.indexOf(tag) !== -1);
      row.style.display = visible ? "" : "none";
      shown += visible ? 1 : 0;
    });
    var counter = document.querySelector("[data-rb-home-count]");
    if (counter) { counter.textContent = String(shown); }
  }

  // Opened from a search result (material marks the words found): a collapsed box holding
  // the first match, such as a step's output on a run page, is opened and scrolled to.
  function revealSearchMatch() {
    if (location.search.indexOf("h=") === -1) { return; }
    var first = null;
    document.querySelectorAll("article mark[data-md-highlight]").forEach(function (mark) {
      for (var node = mark.parentElement; node; node = node.parentElement) {
        if (node.tagName === "DETAILS" && !node.open) {
          node.open = true;
          first = first || mark;
        }
      }
    });
    if (first) { first.scrollIntoView({ block: "center" }); }
  }

  // Run pages: a step's output replayed with its recorded timing. The chunks are (seconds
  // from the attempt's start, text), fetched from the run's replay.json (beside the page) on
  // the first play; the text is written with textContent only, never as HTML. Control sequences are dropped, `\r` and `\b` move back on the line; pauses longer
  // than IDLE seconds are shortened. When the replay ends the full rendering comes back.
  var IDLE = 2;
  var CONTROL = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[P_^X][^\x1b]*(?:\x1b\\)?|\x1b[ -\/]*[0-~]?|[\x00-\x07\x0b\x0c\x0e-\x1f\x7f]/g;

  var replays = {};  // replay.json URL -> a promise of its contents

  function fetchReplays(src) {
    if (!replays[src]) {
      replays[src] = fetch(src).then(function (response) {
        if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
        return response.json();
      });
      replays[src].catch(function () { delete replays[src]; });
    }
    return replays[src];
  }

  function Player(box) {
    var chunks = null;
    var pre = box.parentNode.querySelector("pre.rb-term");
    var button = document.createElement("button");
    var clock = document.createElement("span");
    var saved = null, lines = [""], col = 0, index = 0, timer = null, at = 0;
    button.type = "button";
    button.textContent = "▶ Replay";
    clock.className = "rb-replay-time";
    box.appendChild(button);
    box.appendChild(clock);

    function write(text) {
      text = text.replace(CONTROL, "");
      for (var i = 0; i < text.length; i++) {
        var ch = text[i];
        if (ch === "\n") { lines.push(""); col = 0; }
        else if (ch === "\r") { col = 0; }
        else if (ch === "\b") { col = Math.max(col - 1, 0); }
        else {
          var line = lines[lines.length - 1];
          lines[lines.length - 1] = line.slice(0, col) + ch + line.slice(col + 1);
          col++;
        }
      }
      pre.textContent = lines.join("\n");
    }

    function step() {
      timer = null;
      if (index >= chunks.length) { finish(); return; }
      write(chunks[index][1]);
      at = chunks[index][0];
      clock.textContent = at.toFixed(1) + "s";
      index++;
      if (index >= chunks.length) { timer = setTimeout(finish, 600); return; }
      var wait = Math.min(Math.max(chunks[index][0] - at, 0), IDLE);
      timer = setTimeout(step, wait * 1000);
    }

    function finish() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (saved !== null) { pre.innerHTML = saved; }
      saved = null; index = 0; lines = [""]; col = 0;
      box.removeAttribute("data-playing");
      button.textContent = "▶ Replay";
      clock.textContent = "";
    }

    function play() {
      if (saved === null) {
        saved = pre.innerHTML;
        pre.textContent = "";
        var details = box.closest("details");
        if (details) { details.open = true; }
      }
      box.setAttribute("data-playing", "playing");
      button.textContent = "❚❚ Pause";
      step();
    }

    button.addEventListener("click", function () {
      if (timer) {  // playing: pause
        clearTimeout(timer); timer = null;
        box.setAttribute("data-playing", "paused");
        button.textContent = "▶ Resume";
        return;
      }
      if (chunks) { play(); return; }
      button.disabled = true;
      fetchReplays(box.getAttribute("data-rb-src")).then(function (all) {
        chunks = all[box.getAttribute("data-rb-replay")] || [];
        button.disabled = false;
        play();
      }).catch(function (error) {
        button.disabled = false;
        clock.textContent = "The replay could not be loaded (" + error.message + ").";
      });
    });
  }

  function bindReplays() {
    document.querySelectorAll("[data-rb-replay]").forEach(function (box) {
      if (box.getAttribute("data-bound")) { return; }
      box.setAttribute("data-bound", "1");
      try { new Player(box); } catch (error) { box.textContent = ""; }
    });
  }

  function bind() {
    document.querySelectorAll("[data-rb-filter]").forEach(function (select) {
      select.addEventListener("change", applyRunFilters);
    });
    applyRunFilters();  // after back/forward the browser may have restored a choice
    document.querySelectorAll("[data-rb-home-text], [data-rb-home-tag]").forEach(function (el) {
      el.addEventListener("input", applyHomeFilter);
    });
    applyHomeFilter();
    bindGraphs();
    bindReplays();
    // Material marks the words found a moment after the page is shown: look a few times.
    [0, 100, 300, 1000].forEach(function (ms) { setTimeout(revealSearchMatch, ms); });
  }

  if (window.document$) { window.document$.subscribe(bind); } else if (
    document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else { bind(); }
  window.addEventListener("pageshow", function () { applyRunFilters(); applyHomeFilter(); });
})();
