"""The task definitions of a compiled DAG: how one node of one partition runs `mawb step`.

Without --kubernetes a `@task` runs the `mawb` command inside the task's own process (or, with
an `executable`, as a subprocess); with --kubernetes each task is a KubernetesPodOperator pod
of the mawb image. Either way the task is the same command line, `mawb step --flow F --node N
--partition P --partitions K --tick-time T [--home H] [--param name=value ...]`. Each
partition has its own task group, and every task of partition P runs in P's single-slot pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mawb.compile import source
from mawb.compile.kubernetes import FLOW_MOUNT, WORKER_UID

if TYPE_CHECKING:
    from mawb.compile.airflow import Target
    from mawb.model import Flow


def step_local(target: Target) -> str:
    run = (
        "\n".join(
            [
                "    subprocess.run([MAWB, *arguments], check=True)  # noqa: S603 - no shell",
                "    return None  # the rows it wrote are in the task log",
            ]
        )
        if target.executable
        else "\n".join(
            [
                "    from mawb.cli import app  # the `mawb` command, run in this task's process",
                "",
                '    result = app(arguments, prog_name="mawb", standalone_mode=False)',
                "    if isinstance(result, int) and result:",
                '        raise RuntimeError(f"mawb step failed with exit code {result}")',
                "    return result  # rows written per node and event: the task's XCom",
            ]
        )
    )
    return f'''@task
def mawb_step(target: list[str], partition: int) -> dict | None:
    """Run `mawb step` for one stage (a node, _ingest, _dispatch, _drain, or every stage:
    _tick) and one partition of contacts; returns the rows it wrote (its XCom)."""
    context = get_current_context()
    tick = context.get("logical_date") or context["dag_run"].run_after
    arguments = ["step", "--flow", FLOW_FILE, *target]
    arguments += ["--partition", str(partition), "--partitions", str(len(PARTITIONS))]
    arguments += ["--tick-time", tick.isoformat()]
    if HOME:
        arguments += ["--home", HOME]
    for name in PARAMS:
        value = context["params"][name]
        shown = value if isinstance(value, str) else json.dumps(value)
        arguments += ["--param", f"{{name}}={{shown}}"]
{run}


def step_task(partition: int, task_id: str, target: list[str], label: str):
    """The task of one node (or stage) in the partition's group, in the partition's pool."""
    pool = POOL.format(partition)
    named = mawb_step.override(task_id=task_id, task_display_name=label, pool=pool)
    return named(target=target, partition=partition)'''


def param_arguments(flow: Flow) -> str:
    parts = []
    for name, value in flow.params.items():
        rendered = (
            f"{{{{ params.{name} }}}}"
            if isinstance(value, str)
            else (f"{{{{ params.{name} | tojson }}}}")
        )
        parts.append(f'    "--param",\n    "{name}={rendered}",')
    if not parts:
        return "PARAM_ARGUMENTS: list[str] = []"
    return "PARAM_ARGUMENTS = [\n" + "\n".join(parts) + "\n]"


def step_kubernetes(target: Target) -> str:
    pod = target.pod
    resources = (
        '    "container_resources": k8s.V1ResourceRequirements(\n'
        f"        requests={source.literal(pod.requests)},\n"
        f"        limits={source.literal(pod.limits)},\n"
        "    ),"
    )
    return "\n".join(
        [
            "# Rendered per task instance: the tick is the run's logical date (or its run time).",
            'TICK_TIME = "{{ (logical_date or dag_run.run_after).isoformat() }}"',
            "POD = {",
            f'    "namespace": {source.long_string(pod.namespace, 17, 1)},',
            f'    "image": {source.long_string(pod.image, 13, 1)},',
            f'    "service_account_name": {source.string(pod.service_account)},',
            f'    "node_selector": {source.literal(pod.node_selector)},',
            resources,
            '    "env_vars": {"MAWB_HOME": HOME},',
            "    # Provider credentials: every key of this Secret becomes an env var "
            "(never a value here).",
            f'    "secrets": [Secret("env", None, {source.string(pod.secret_name)})],',
            '    "volumes": [',
            "        k8s.V1Volume(",
            '            name="workspace",',
            "            persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(",
            f"                claim_name={source.string(pod.workspace_claim)},",
            "            ),",
            "        ),",
            "        k8s.V1Volume(",
            '            name="flow",',
            "            config_map=k8s.V1ConfigMapVolumeSource(name=FLOW_CONFIGMAP),",
            "        ),",
            "    ],",
            '    "volume_mounts": [',
            '        k8s.V1VolumeMount(name="workspace", mount_path=HOME),',
            f'        k8s.V1VolumeMount(name="flow", mount_path={source.string(FLOW_MOUNT)}, '
            "read_only=True),",
            "    ],",
            "    # The image's non-root user; fs_group makes the workspace volume writable for it.",
            '    "security_context": k8s.V1PodSecurityContext(',
            f"        run_as_non_root=True, run_as_user={WORKER_UID}, fs_group={WORKER_UID}",
            "    ),",
            '    "container_security_context": k8s.V1SecurityContext(',
            "        allow_privilege_escalation=False,",
            '        capabilities=k8s.V1Capabilities(drop=["ALL"]),',
            "    ),",
            '    "labels": {"app.kubernetes.io/part-of": "mawb"},',
            '    "on_finish_action": "delete_succeeded_pod",',
            "}",
            "",
            "",
            "def step_task(partition: int, task_id: str, target: list[str], label: str):",
            '    """A pod running `mawb step` for one node (or stage) of the partition, in the',
            '    partition\'s pool."""',
            '    arguments = ["step", "--flow", FLOW_FILE, *target, "--partition", str(partition)]',
            '    arguments += ["--partitions", str(len(PARTITIONS)), "--tick-time", TICK_TIME]',
            '    arguments += ["--home", HOME, *PARAM_ARGUMENTS]',
            "    # The rows the step wrote, per node and event, become the task's XCom.",
            '    arguments += ["--xcom-file", "/airflow/xcom/return.json"]',
            "    return KubernetesPodOperator(",
            "        task_id=task_id,",
            "        task_display_name=label,",
            "        pool=POOL.format(partition),",
            '        cmds=["mawb"],',
            "        arguments=arguments,",
            "        do_xcom_push=True,",
            "        **POD,",
            "    )",
        ]
    )
