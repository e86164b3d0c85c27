"""Ansible inventories as plain data: INI and YAML read into targets, host ranges, variables
from groups and hosts, and every construct that is not read named at its line."""

from __future__ import annotations

import textwrap

import pytest

from engine.inventory import (
    InventoryError,
    expand_hosts,
    looks_like_ansible_yaml,
    looks_like_ini,
    read_ini,
    read_yaml,
)
from engine.model import Target
from engine.yamlsafe import YamlDocument, load_yaml

INI = """\
# production
mail.example.com

[web]
web[01:03].example.com
db-a ansible_host=10.0.0.5 ansible_port=2222 ansible_user=ops

[db]
db-[a:b] ansible_host=db.internal   # the second one shares the address

[prod:children]
web
db

[prod:vars]
ansible_user=deploy
ntp_server="ntp.example.com"

[all:vars]
ansible_port=22
"""


def where(targets: tuple[Target, ...]) -> dict[str, str | tuple[str, ...] | None]:
    return {t.name: t.group or t.ssh or t.exec for t in targets}


def test_an_ini_inventory_with_ranges_children_and_variables() -> None:
    targets = read_ini(INI)
    assert where(targets) == {
        "mail.example.com": "ssh://mail.example.com:22",
        "web01.example.com": "ssh://deploy@web01.example.com:22",
        "web02.example.com": "ssh://deploy@web02.example.com:22",
        "web03.example.com": "ssh://deploy@web03.example.com:22",
        # The host's own variables win over its groups', a later line's over an earlier's.
        "db-a": "ssh://ops@db.internal:2222",
        "db-b": "ssh://deploy@db.internal:22",
        "ungrouped": ("mail.example.com",),
        "web": ("web01.example.com", "web02.example.com", "web03.example.com", "db-a"),
        "db": ("db-a", "db-b"),
        "prod": ("web", "db"),
        "all": (
            "mail.example.com",
            "web01.example.com",
            "web02.example.com",
            "web03.example.com",
            "db-a",
            "db-b",
        ),
    }
    lines = {t.name: t.line for t in targets}
    assert (lines["mail.example.com"], lines["web02.example.com"], lines["db-b"]) == (2, 5, 9)
    assert (lines["web"], lines["prod"]) == (4, 11)


YAML = """\
all:
  vars:
    ansible_user: admin
  hosts:
    jump.example.com:
  children:
    webservers:
      hosts:
        foo.example.com:
        bar.example.com:
          ansible_port: 5555
          ansible_host: 192.0.2.50
      vars:
        http_port: 80
    local:
      hosts:
        control:
          ansible_connection: local
        app:
          ansible_connection: docker
          ansible_host: app-1
    east:
      children:
        webservers:
"""


def read(text: str) -> tuple[Target, ...]:
    loaded = load_yaml(textwrap.dedent(text))
    assert isinstance(loaded, YamlDocument) and isinstance(loaded.value, dict)
    document = loaded
    return read_yaml(loaded.value, lambda *keys: 1 + (document.line_of(*keys) or 0))


def test_a_yaml_inventory_with_children_vars_and_connections() -> None:
    targets = read(YAML)
    assert where(targets) == {
        "jump.example.com": "admin@jump.example.com",
        "foo.example.com": "admin@foo.example.com",
        "bar.example.com": "ssh://admin@192.0.2.50:5555",
        "control": "env",  # a bash here
        "app": "docker exec -i -t app-1",
        "webservers": ("foo.example.com", "bar.example.com"),
        "local": ("control", "app"),
        "east": ("webservers",),
        "all": ("jump.example.com", "foo.example.com", "bar.example.com", "control", "app"),
    }
    assert {t.name: t.line for t in targets}["bar.example.com"] == 10


def test_formats_are_told_apart() -> None:
    assert looks_like_ini(INI) and looks_like_ini("web1 ansible_host=10.0.0.1\n")
    assert not looks_like_ini(YAML) and not looks_like_ini("hosts:\n  web1: web1.internal\n")
    loaded = load_yaml(YAML)
    assert isinstance(loaded, YamlDocument) and looks_like_ansible_yaml(loaded.value)
    assert not looks_like_ansible_yaml({"hosts": {"web1": "web1.internal"}, "groups": {}})
    assert not looks_like_ansible_yaml({"targets": {"db1": {"ssh": "db1"}}})


def test_host_ranges() -> None:
    assert expand_hosts("web[08:10].x", 1) == ["web08.x", "web09.x", "web10.x"]
    assert expand_hosts("n[1:5:2]", 1) == ["n1", "n3", "n5"]
    assert expand_hosts("db-[a:c]", 1) == ["db-a", "db-b", "db-c"]
    assert expand_hosts("plain", 1) == ["plain"]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[web]\nw[1:2][1:2]\n", 2, "more than one range"),
        ("[web]\nw[1:a]\n", 2, "is not read"),
        ("[web:meta]\nx\n", 1, "[web:meta] is not read"),
        ("[web]\nw1 ansible_password=secret\n", 2, "ansible_password is not read"),
        ("[web]\nw1\n[web:vars]\nansible_ssh_private_key_file=k\n", 4, "private_key_file"),
        ("[web]\nw1 ansible_connection=winrm\n", 2, "winrm is not supported"),
        ("[web]\nw1 ansible_port=http\n", 2, "'http' is not a port"),
        ("[web]\nw1 ansible_user='a b'\n", 2, "'a b' is not a user name"),
        ("[web]\nw1 ansible_host=-oProxyCommand=x\n", 2, "is not a host address"),
        ("[web]\nw1 novalue\n", 2, "expected NAME=VALUE"),
        ("[a:children]\nb\n[b:children]\na\n", 1, "groups contain each other: a -> b -> a"),
        ("[web]\nweb\n", 1, "names both a group and a host"),
    ],
)
def test_what_an_ini_inventory_cannot_say_is_named_at_its_line(
    text: str, line: int, words: str
) -> None:
    with pytest.raises(InventoryError) as raised:
        read_ini(text)
    assert raised.value.line == line and words in raised.value.message, raised.value.message


def test_what_a_yaml_inventory_cannot_say_is_named_at_its_line() -> None:
    with pytest.raises(InventoryError) as raised:
        read(
            """
            all:
              children:
                web:
                  hostz:
                    w1:
            """
        )
    assert (raised.value.line, raised.value.message) == (5, "unknown key 'hostz' in group 'web'")
    with pytest.raises(InventoryError) as raised:
        read("all:\n  hosts:\n    w1:\n      ansible_ssh_common_args: -oProxyJump=x\n")
    assert raised.value.line == 4 and raised.value.hint and "ssh config" in raised.value.hint
