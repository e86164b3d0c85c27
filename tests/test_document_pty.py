"""An operator at a real terminal: Ctrl-C ends a follow step and the run goes on; a choice
between content tabs is one key; a manual step runs the command it offers on `r`."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_runbook
from tests.test_run import operator  # noqa: F401 (the fixture)

RUNBOOK = """\
# Bring the tunnel up

Leave the log open while the tunnel comes up; it never ends by itself.

```bash {id: follow-log}
tail -f /dev/null
```

=== "Staging"

    ```bash {id: staging}
    echo tunnel to staging
    ```

=== "Production"

    ```bash {id: production}
    echo tunnel to production
    ```

1. Run `echo announced in chat` when it is up
"""


def test_ctrl_c_ends_a_follow_step_a_choice_is_one_key_and_an_offer_runs(
    tmp_path: Path,
    operator,  # noqa: F811
) -> None:
    path = write_runbook(tmp_path, RUNBOOK)
    op = operator(path)
    op.expect("Leave the log open while the tunnel comes up")
    op.expect("Ctrl-C ends it and the run goes on")
    op.answer_step("r")
    op.expect("running for")  # the progress line: the step is running
    op.child.sendintr()
    op.expect("✓ follow-log succeeded")
    op.expect("[1] Staging")
    op.expect("[2] Production")
    op.child.send("2")
    op.expect("↷ staging skipped (option 'Staging' not taken: option 'Production' was chosen)")
    op.answer_step("r")
    op.expect("tunnel to production")
    op.expect("offers [1] echo announced in chat")
    op.expect("[r]un the command")
    op.child.send("r")
    op.expect("announced in chat")
    op.expect("succeeded")
    assert op.finish() == 0
    assert "Run succeeded, 1 step skipped" in op.screen
