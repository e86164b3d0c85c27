"""What a code block holds, judged by its content: shell commands, data, or another language.

An unlabelled fence whose lines read as commands is a step the engine guessed; a shell fence
holding JSON, YAML, PromQL, SQL or captured output is shown, not run. Inline code in a list item
that reads as a command can be offered to the operator. The rules are deliberately conservative:
a command wrongly taken for text costs a warning, text wrongly run costs an incident. Pure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from engine.commands import KEYWORDS, logical_lines, peel, split_words


class BlockKind(StrEnum):
    COMMANDS = "commands"
    DATA = "data"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class BlockJudgement:
    """What a block holds (`what`: "shell commands", "JSON", "PromQL", ...) and why."""

    kind: BlockKind
    what: str
    reason: str


# Programs operators run; a first word from here (or a path to a program) reads as a command.
KNOWN_PROGRAMS = frozenset(
    """
    kubectl oc k helm kustomize istioctl linkerd argocd flux velero virtctl kubectx kubens stern
    minikube kind k3s k9s etcdctl crictl ctr docker docker-compose podman nerdctl buildah skopeo
    systemctl journalctl service gitlab-ctl gitlab-rake gitlab-rails gitlab-psql gitlab-backup
    gitlab-redis-cli knife chef-client chef-solo puppet ansible ansible-playbook salt salt-call
    terraform tofu terragrunt packer vault consul nomad aws gcloud gsutil az doctl hcloud
    openstack ssh scp sftp rsync curl wget git svn hg psql pg_dump pg_dumpall pg_restore
    pg_basebackup pg_ctl pg_ctlcluster pg_lsclusters pg_upgrade pg_isready createdb dropdb
    createuser dropuser vacuumdb reindexdb patronictl mysql mysqldump mysqladmin mariadb redis-cli
    mongo mongosh mongodump mongorestore cqlsh nodetool repmgr clickhouse-client influx sqlite3 apt
    apt-get apt-cache dpkg yum dnf rpm zypper apk snap brew pip pip3 npm npx yarn pnpm gem bundle
    go cargo make cmake mvn gradle java python python3 ruby node perl php rails rake bin/rails
    cat ls cd pwd grep egrep fgrep rg awk sed cut tr sort uniq wc head tail less more tee xargs
    find locate echo printf export unset source alias read test true false sleep date touch ln cp
    mv rm mkdir rmdir chmod chown chgrp stat file which whereis type id whoami hostname uname
    uptime free df du lsblk blkid mount umount fdisk parted mkfs mkfs.ext4 mkfs.xfs resize2fs
    xfs_growfs lvextend lvcreate lvs vgs pvs growpart tar gzip gunzip zip unzip xz zstd openssl
    dig nslookup host ping traceroute tracepath mtr netstat ss ip ifconfig iptables nft ufw
    firewall-cmd tcpdump nc ncat socat telnet nmap ps pgrep pkill kill killall top htop iotop
    vmstat iostat sar mpstat pidstat lsof strace ltrace perf dmesg sysctl modprobe lsmod
    timedatectl hostnamectl chronyc ntpq useradd usermod userdel groupadd passwd su sudo visudo
    crontab at watch tmux screen vi vim nano emacs env jq yq base64 sha256sum md5sum diff patch
    nginx apachectl haproxy certbot htpasswd logrotate rsyslogd sshd ssh-keygen ssh-add
    ssh-copy-id gpg sops age kubeadm kubelet helmfile skaffold tilt eksctl rosa ocm kn tkn
    prometheus promtool amtool alertmanager grafana-cli consul-template envoy caddy traefik
    openssl s3cmd rclone restic borg duplicity bash sh zsh exit set shopt wall logger systemd-run
    loginctl update-alternatives ldconfig ldd nproc lscpu lspci lsusb numactl taskset ionice nice
    nohup timeout time tput clear yes seq shuf split csplit column paste join comm od hexdump
    xxd strings iconv dos2unix mc ftp lftp aria2c http reboot shutdown poweroff halt wipefs dd
    shred lvremove vgremove systemd-analyze mongo gitlab-backup kill
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_PROGRAM_PATH = re.compile(r"^(\.{0,2}/|~/)[\w./-]*[\w-]$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PROMQL = re.compile(
    r"^\s*(sum|rate|irate|avg|max|min|count|histogram_quantile|increase|topk|bottomk|absent"
    r"|delta|deriv|label_replace|avg_over_time|max_over_time|quantile_over_time|predict_linear)"
    r"\s*(by|without)?\s*\(|^\s*[a-zA-Z_:][\w:]*\s*\{[^}]*(=~?|!~?)\s*\"",
)
_SQL = re.compile(
    r"^\s*(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|DATABASE"
    r"|USER|ROLE|EXTENSION)|ALTER\s+(TABLE|SYSTEM|USER|ROLE|DATABASE)|DROP\s+\w+|WITH\s+\w+\s+AS"
    r"|GRANT|REVOKE|EXPLAIN|VACUUM|ANALYZE|TRUNCATE|BEGIN;|COMMIT;|ROLLBACK;|SHOW\s+\w+;)\b",
    re.IGNORECASE,
)
_YAML_LINE = re.compile(r"^\s*(- )?[\w.\"'/-]+:(\s|$)|^\s*- \S|^\s*#|^---$|^\s*$")
_HOSTS_LINE = re.compile(r"^\s*(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]+:[0-9a-f:]*)\s+[\w.-]+")
_SSH_CONFIG = re.compile(r"^\s*(Host|Match)\s+\S", re.MULTILINE)
_INI_SECTION = re.compile(r"^\s*\[[\w .:-]+\]\s*$")
_TABLE_HEADER = re.compile(r"^[A-Z][A-Z_-]+(\s{2,}[A-Z][A-Z_()%-]*(\s[A-Z]+)?)+\s*$")


def reads_as_command(line: str) -> bool:
    """Whether one command line starts with a known program, a path to one, or shell syntax."""
    return _starts_with_command(split_words(line))


def _starts_with_command(words: list[str] | tuple[str, ...]) -> bool:
    if not words:
        return False
    first = words[0]
    if first in KEYWORDS or first in ("(", "{", "for", "export", "source", "."):
        return True
    program = peel(list(words))
    if _ASSIGNMENT.match(first) and not program:
        return True  # only assignments; `notAfter=Dec 31 ...` (output) names no program
    name = program[0] if program else first
    if name.startswith(("$", "${")):
        return name.strip("${}") in ("EDITOR", "VISUAL", "SHELL", "PAGER")
    return name in KNOWN_PROGRAMS or bool(_PROGRAM_PATH.match(name) and "/" in name[1:])


def judge_block(text: str) -> BlockJudgement:
    """Whether a block's text is shell commands, data of a named kind, or plain text."""
    data = _data_kind(text)
    if data:
        return BlockJudgement(BlockKind.DATA, data[0], data[1])
    lines = logical_lines(text)
    if not lines:
        return BlockJudgement(BlockKind.TEXT, "nothing to run", "the block is empty")
    if not _starts_with_command(lines[0].words):
        first = lines[0].text.split()[0] if lines[0].text.split() else lines[0].text
        return BlockJudgement(
            BlockKind.TEXT, "text", f"its first line does not start with a command ({first})"
        )
    known = sum(_starts_with_command(line.words) for line in lines)
    if known * 5 < len(lines) * 4:
        return BlockJudgement(
            BlockKind.TEXT,
            "text with some commands",
            f"only {known} of its {len(lines)} lines start with a command",
        )
    return BlockJudgement(
        BlockKind.COMMANDS, "shell commands", "every line starts with a known command"
    )


def _data_kind(text: str) -> tuple[str, str] | None:
    """(what, reason) when the text is data or another language rather than shell."""
    stripped = text.strip()
    if not stripped:
        return None
    lines = [line for line in stripped.splitlines() if line.strip()]
    first = lines[0]
    if stripped[0] in "{[" and _is_json(stripped):
        return "JSON", "it parses as JSON"
    if reads_as_command(first) and not _SQL.match(first):
        return None
    if _PROMQL.match(first):
        return "PromQL", "it reads as a Prometheus query"
    if _SQL.match(first):
        return "SQL", "it starts with an SQL statement"
    if _SSH_CONFIG.match(first):
        return "an ssh config", "it starts with a Host block"
    if all(line.lstrip().startswith("#") for line in lines):
        return "only comments", "every line is a comment"
    if all(_HOSTS_LINE.match(line) or line.lstrip().startswith("#") for line in lines):
        return "a hosts file", "every line is an address and a name"
    if _INI_SECTION.match(first):
        return "an INI file", "it starts with a [section]"
    if len(lines) > 1 and all(_YAML_LINE.match(line) for line in lines):
        return "YAML", "every line is a YAML key or list item"
    if _TABLE_HEADER.match(first):
        return "command output", "it starts with a table header"
    return None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def inline_command(code: str) -> bool:
    """Whether an inline code span (`gitlab-ctl stop puma`) is a command to run: a known
    program with at least one argument, on one line (a lone `kubectl` or a path is not)."""
    if "\n" in code or not code.strip():
        return False
    words = split_words(code.strip())
    program = peel(words)
    if len(program) < 2 and not (program and program[0] != words[0]):
        return False
    return bool(program) and program[0] in KNOWN_PROGRAMS
