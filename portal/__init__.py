"""The kernel every app stands on: organisation, staff and roles, the permission matrix, the
audit trail, the approval engine, job runs, money, masking, the business clock and the error
hierarchy. It imports no other app of the project."""
