"""Every Celery beat schedule, in one place (Asia/Shanghai). `expires` keeps a backlog from
running a night twice."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "nightly-chain": {
        "task": "operations.nightly_run_task",
        "schedule": crontab(hour=1, minute=30),
        "options": {"expires": 6 * 60 * 60},
    },
    # A night whose worker died (or whose tasks the broker lost) is found and dispatched
    # again (operations.tasks.nightly_watchdog_task).
    "nightly-watchdog": {
        "task": "operations.nightly_watchdog_task",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
}
