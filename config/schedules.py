"""Every Celery beat schedule, in one place (Asia/Shanghai). `expires` keeps a backlog from
running a night twice."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "nightly-chain": {
        "task": "operations.nightly_run_task",
        "schedule": crontab(hour=1, minute=30),
        "options": {"expires": 6 * 60 * 60},
    },
}
