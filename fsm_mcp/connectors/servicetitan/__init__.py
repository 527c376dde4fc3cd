"""ServiceTitan: the same tools over a business's ServiceTitan tenant (`backend.py`).

Customers are recognised from the directory (synced by `sync.py`, written through on
every change); their recent jobs and balance, and everything about jobs, technicians and
invoices, come from ServiceTitan at the time of the call.

What ServiceTitan's API cannot do, and what fsm-mcp does instead:
- en route, arrived and working are set by the technician's app; update_job_status records
  them as job notes, which get_job reads back;
- merging customers has no API; merge_customers refuses and says where to do it;
- the job's invoice is ServiceTitan's own; create_invoice fills it, never posts another.
"""
