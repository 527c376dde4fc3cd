"""Changes out: the outbox every change writes to, read by cursor, and the doors onto it.

    outbox     the event log: `record` (in the change's own transaction), `read` by cursor, `prune`
    changes    what a service records for a job, an invoice, a customer (`job_changed`, `job_booked`, ...)
    webhooks   subscribers, signing (Standard Webhooks), the URL check
    delivery   the worker that delivers to subscribers: at least once, in order per subject, dead letters

Event types: `job.created`, `job.status_changed`, `job.completed`, `job.cancelled`, `technician.assigned`,
`invoice.created`, `payment.received`, `customer.created`, `customer.merged`. A status move to completed or
canceled is reported as `job.completed` or `job.cancelled` (one event per change), any other as
`job.status_changed`; each job event's data is the job's state after it (ids, status, window), so a reader
needs no other call to know where the job stands. No names, phones, e-mails, addresses or notes go in.
"""
