"""Housecall Pro: the same tools over a company's Housecall Pro account (`backend.py`).

Customers are recognised from the directory (synced by `sync.py`, written through on every
change); their recent jobs and balance, and everything about jobs, technicians and
invoices, come from Housecall Pro at the time of the call.

What Housecall Pro's API cannot do, and what fsm-mcp does instead:
- it cannot start, complete or cancel a job (the apps do): update_job_status refuses those
  and says so; en route, arrived and working are recorded as job notes, on hold takes the
  job off the schedule ("needs scheduling"), and every status set is dated by its note;
- it cannot create an invoice: create_invoice puts the lines on the job, from which
  Housecall Pro makes its invoice, and the business sends it from the app (`invoices.py`);
- jobs have no priority and no summary field: both go in the job's first note;
- writes take no idempotency key: a job carries a digest of its key in that note;
- a customer holds three numbers and one e-mail; a contact beyond them is not added;
- merging customers has no API; merge_customers refuses and says where to do it;
- employees carry tags: a technician's skills are its tags, plus the `skills` setting.
"""
