"""The inference tables: which blocks are commands, which commands are dangerous, which need
the terminal. Plain strings in, judgements out; each row is a line a real runbook could hold."""

from __future__ import annotations

import pytest

from engine.classify import BlockKind, inline_command, judge_block
from engine.commands import simple_commands
from engine.danger import find_danger
from engine.terminal_use import TerminalUse, terminal_need

DANGEROUS = [
    ("oc delete pod my-pod -n openshift-monitoring", "kube-delete"),
    ("kubectl -n prod delete deployment api", "kube-delete"),
    ("oc adm drain worker-3 --ignore-daemonsets --delete-emptydir-data", "kube-delete"),
    ("kubectl drain node-1", "kube-delete"),
    ("kubectl scale deploy/api --replicas=0", "kube-delete"),
    ("virtctl stop my-vm", "stop-service"),
    ("sudo gitlab-ctl stop puma", "stop-service"),
    ("systemctl disable --now nginx", "stop-service"),
    ("helm uninstall prometheus -n monitoring", "destroy-release"),
    ("terraform destroy -target=module.db", "destroy-release"),
    ("terraform apply -auto-approve", "destroy-release"),
    ("psql -d app -c 'DROP DATABASE app_old;'", "sql-drop"),
    ("psql -c 'TRUNCATE TABLE events'", "sql-truncate"),
    ("echo 'DELETE FROM sessions;' | psql", "sql-delete-all"),
    ('psql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"', "sql-terminate"),
    ("redis-cli FLUSHALL", "kv-flush"),
    ("sudo apt-get purge -y postgresql-13", "remove-package"),
    ("rm -rf /var/lib/app/cache", "rm-recursive"),
    ("sudo rm -r --one-file-system /srv/old", "rm-recursive"),
    ("dd if=/dev/zero of=/dev/sdb bs=1M", "dd-device"),
    ("git push --force origin main", "git-rewrite"),
    ("git reset --hard origin/main", "git-rewrite"),
    ("aws ec2 terminate-instances --instance-ids i-0abc", "cloud-delete"),
    ("gcloud compute instances delete web-1 --zone europe-west1-b", "cloud-delete"),
    ("az group delete --name rg-test", "cloud-delete"),
    ("docker system prune -af", "destroy-release"),
    ("mkfs.ext4 /dev/xvdf", "wipe-disk"),
    ("dropdb app_staging", "drop-store"),
    ("patronictl -c /etc/patroni.yml failover --candidate pg2 --force", "database-node"),
    ("sudo -u postgres pg_ctlcluster 15 main promote", "database-node"),
    ("nodetool decommission", "database-node"),
]
HARMLESS = [
    "dd if=/dev/zero of=/dev/null bs=1M count=100",
    "kubectl get pods -A",
    "oc describe node worker-3",
    "rm /tmp/lockfile",
    "echo 'kubectl delete is dangerous'",
    "grep -r delete /etc/app",
    "systemctl status nginx",
    "git push origin main",
    'psql -c "DELETE FROM sessions WHERE expires < now();"',
    "helm list -A",
    "terraform plan",
    "aws s3 ls",
    "patronictl -c /etc/patroni.yml list",
    "pg_ctlcluster 15 main status",
]


@pytest.mark.parametrize(("command", "rule"), DANGEROUS)
def test_destructive_commands_match_their_rule(command: str, rule: str) -> None:
    found = find_danger(command)
    assert found is not None and found.rule == rule


@pytest.mark.parametrize("command", HARMLESS)
def test_ordinary_commands_are_not_dangerous(command: str) -> None:
    assert find_danger(command) is None


def test_danger_names_the_line_it_is_on() -> None:
    found = find_danger("kubectl get pods\n\n# then\nkubectl delete pod web-0\n")
    assert found is not None and found.line == 4 and found.text == "kubectl delete pod web-0"


INTERACTIVE = [
    "oc exec -it prometheus-k8s-0 -n openshift-monitoring -- bash",
    "kubectl exec -ti deploy/api -- /bin/sh",
    "docker run -it --rm ubuntu:22.04 bash",
    "oc rsh my-pod",
    "oc debug node/worker-1",
    "ssh bastion.example.com",
    "ssh -i ~/.ssh/ops.pem ubuntu@10.0.0.5",
    "$EDITOR /etc/gitlab/gitlab.rb",
    "sudo vim /etc/nginx/nginx.conf",
    "kubectl edit configmap app-config",
    "oc edit dc/router",
    "psql -h db -U postgres app",
    "sudo gitlab-rails console",
    "sudo gitlab-psql",
    "mysql -u root -p",
    "redis-cli -h cache-1",
    "python3",
    "watch -n 5 'kubectl get pods'",
    "htop",
    "less /var/log/syslog",
    "sudo -i",
    "crontab -e",
]
FOLLOW = [
    "oc logs -f deployment/router -n openshift-ingress",
    "kubectl logs --follow api-7f9c",
    "tail -F /var/log/gitlab/gitlab-rails/production.log",
    "sudo journalctl -u kubelet -f",
    "kubectl port-forward svc/grafana 3000:3000",
    "ssh -N -L 5432:db.internal:5432 bastion",
    "kubectl get pods -w",
    "ping 10.0.0.1",
]
PLAIN = [
    "kubectl exec -it api-0 -- ls /data",
    "oc exec my-pod -- df -h",
    "ssh db1 'systemctl status postgresql'",
    "psql -d app -c 'SELECT 1'",
    "psql -d app < migrate.sql",
    "gitlab-psql -c 'select count(*) from users'",
    "echo 'SELECT 1' | mysql app",
    "redis-cli -h cache-1 INFO memory",
    "python3 -c 'print(1)'",
    "python3 scripts/fix.py",
    "tail -n 100 /var/log/syslog",
    "journalctl -u kubelet --since -1h",
    "kubectl logs api-0",
    "ping -c 3 10.0.0.1",
    "top -b -n 1",
    "docker run --rm alpine echo hi",
]


@pytest.mark.parametrize("command", INTERACTIVE)
def test_commands_that_need_the_terminal(command: str) -> None:
    need = terminal_need(command)
    assert need is not None and need.use is TerminalUse.INTERACTIVE, need


@pytest.mark.parametrize("command", FOLLOW)
def test_commands_that_run_until_stopped(command: str) -> None:
    need = terminal_need(command)
    assert need is not None and need.use is TerminalUse.FOLLOW, need


@pytest.mark.parametrize("command", PLAIN)
def test_commands_that_finish_on_their_own(command: str) -> None:
    assert terminal_need(command) is None


def test_interactive_wins_over_follow_and_names_its_line() -> None:
    need = terminal_need("kubectl logs -f api-0 &\nkubectl exec -it api-0 -- bash\n")
    assert need is not None and need.use is TerminalUse.INTERACTIVE and need.line == 2


COMMAND_BLOCKS = [
    "sudo gitlab-ctl reconfigure",
    'knife ssh "role:gitaly" "sudo gitlab-ctl restart gitaly"',
    "cd /srv/app\ngit pull\nmake deploy",
    "export KUBECONFIG=~/.kube/prod\nkubectl get nodes",
    "for node in web1 web2; do\n  ssh $node uptime\ndone",
    "./scripts/failover.sh --dry-run",
    "NAMESPACE=monitoring kubectl -n $NAMESPACE get pods",
]
DATA_BLOCKS = [
    ('{"replicas": 3, "image": "nginx"}', "JSON"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app", "YAML"),
    ('sum(rate(http_requests_total{code=~"5.."}[5m])) by (service)', "PromQL"),
    ('up{job="node-exporter"} == 0', "PromQL"),
    ("SELECT pid, state FROM pg_stat_activity WHERE state = 'active';", "SQL"),
    ("Host bastion\n  HostName 203.0.113.10\n  User ops", "an ssh config"),
    ("10.0.0.11 db1.internal\n10.0.0.12 db2.internal", "a hosts file"),
    ("# Command\n# fill in later", "only comments"),
    ("NAME      READY   STATUS    RESTARTS   AGE\napi-0     1/1     Running   0          3d", None),
]
TEXT_BLOCKS = [
    "The service restarts on its own within two minutes.",
    "ERROR: connection refused (is the server running?)",
    "FROM ubuntu:22.04\nRUN apt-get update",
]


@pytest.mark.parametrize("text", COMMAND_BLOCKS)
def test_blocks_that_read_as_commands(text: str) -> None:
    assert judge_block(text).kind is BlockKind.COMMANDS


@pytest.mark.parametrize(("text", "what"), DATA_BLOCKS)
def test_blocks_that_are_data(text: str, what: str | None) -> None:
    judged = judge_block(text)
    assert judged.kind is BlockKind.DATA
    assert what is None or judged.what == what


@pytest.mark.parametrize("text", TEXT_BLOCKS)
def test_blocks_that_are_prose_or_other_languages(text: str) -> None:
    assert judge_block(text).kind is BlockKind.TEXT


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("gitlab-ctl stop puma", True),
        ("sudo gitlab-ctl reconfigure", True),
        ("kubectl get pods -n monitoring", True),
        ("sudo reboot", True),
        ("kubectl", False),
        ("/etc/gitlab/gitlab.rb", False),
        ("gitlab.rb", False),
        ("max_connections", False),
        ("true", False),
    ],
)
def test_inline_code_that_is_a_command(code: str, expected: bool) -> None:
    assert inline_command(code) is expected


def test_simple_commands_skip_here_documents_and_join_continuations() -> None:
    text = "psql <<'SQL'\nDROP TABLE x;\nSQL\nkubectl get \\\n  pods\n"
    commands = simple_commands(text)
    assert [(c.name, c.line, c.stdin_fed) for c in commands] == [
        ("psql", 1, True),
        ("kubectl", 4, False),
    ]
    assert commands[1].words == ("kubectl", "get", "pods")
