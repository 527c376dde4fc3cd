"""FieldPulse: the same tools over a company's FieldPulse account (`backend.py`).

Customers are recognised from the directory (synced by `sync.py`, written through on every
change); their recent jobs and balance, and everything about jobs, technicians and
invoices, come from FieldPulse at the time of the call.

What FieldPulse's API cannot do, and what fsm-mcp does instead:
- it has one "in progress" status: arrived and working are told apart, and every status
  fsm-mcp sets is dated, by the job comment written with it;
- jobs have no priority: one other than normal leads the job's notes;
- merging customers has no API; merge_customers refuses and says where to do it;
- writes take no idempotency key: a job is recognised by customer, place, type and start,
  an invoice by its job;
- users carry no skills: they come from the `skills` setting.
"""
