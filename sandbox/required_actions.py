"""A second person answering Airflow's "Required Actions", for the demo and the tests.

In production the approver clicks Approve in the Airflow UI or calls the REST API
(PATCH .../taskInstances/approval/-1/hitlDetails). Here nobody is at a browser, so this calls
the handler behind that REST endpoint in-process, with a user of the embedded auth manager:
the same validation, the same HITL row and the same resume of the parked task as a click."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

log = logging.getLogger("tributary.required_actions")


def waiting_approvals(dag_id: str, task_id: str = "approval") -> list[str]:
    """Run ids whose approval task waits for a person."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.run_id).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
            )
        ).all()
    return [r[0] for r in rows]


def answer(dag_id: str, run_id: str, user: str, option: str = "Approve", task_id: str = "approval") -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    with create_session() as session:
        update_hitl_detail(
            dag_id=dag_id,
            dag_run_id=run_id,
            task_id=task_id,
            update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option]),
            user=SimpleAuthManagerUser(username=user, role="admin"),
            session=session,
            map_index=-1,
        )
    log.info("%s answered %s for %s/%s", user, option, dag_id, run_id)


def answer_when_asked(
    dag_id: str, user: str | Sequence[str], option: str = "Approve", timeout_s: float = 900, poll_s: float = 0.5
) -> threading.Event:
    """Answer the approval the DAG asks for, from a background thread; set the returned event to
    stop waiting. `user` may be several names: each answers in turn, the next one when the
    approval waits again (the preparer's answer is refused and the approval asks again)."""
    stop = threading.Event()
    users = [user] if isinstance(user, str) else list(user)

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        answered: set[tuple[str, str]] = set()
        for who in users:
            while time.monotonic() < deadline and not stop.is_set():
                waiting = [r for r in waiting_approvals(dag_id) if (r, who) not in answered]
                if waiting:
                    answer(dag_id, waiting[0], who, option)
                    answered.add((waiting[0], who))
                    break
                time.sleep(poll_s)

    threading.Thread(target=watch, name=f"approver-{'-'.join(users)}", daemon=True).start()
    return stop
