"""Admin for the product team: a campaign is built with its tasks on one page (`campaigns`), a
task's ladder steps on the task's page (`tasks`); approval, pause, resume and end go through
the services (so the maker-checker rule applies); member events, their batches and task
completions are read-only (`events`).

A campaign (and its tasks) can be changed freely while it is a draft or rejected. Once
launched (scheduled, active, paused) its pages offer only names and descriptions, which
apply at once, and the tasks' rewards and caps and the budget, which saving sends for
approval (`campaigns.services.changes`); waiting for approval, or ended, they are
read-only. Its status moves only through the workflow buttons. The forms (`forms`) show the
rules of `campaigns.services.config` next to their fields; saving and deleting call the
services, which enforce them again with the campaign row locked and write the audit
entries.

Importing the modules registers their admins (Django's admin autodiscovery imports this
package).
"""

from .campaigns import CampaignAdmin, TaskInline
from .events import EventBatchAdmin, MemberEventAdmin, TaskCompletionAdmin
from .tasks import TaskAdmin, TaskStepInline

__all__ = [
    "CampaignAdmin",
    "EventBatchAdmin",
    "MemberEventAdmin",
    "TaskAdmin",
    "TaskCompletionAdmin",
    "TaskInline",
    "TaskStepInline",
]
