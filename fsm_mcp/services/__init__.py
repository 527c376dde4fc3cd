"""The application: one module per business operation, under every door (MCP tools, the CLI,
automations).

A write service takes the business it acts for (`ServedBusiness`), the actor (who acts, for
the audit log: a tool passes the caller its credential proved, an automation a named system
actor such as `system:automation-x`), the idempotency key and a frozen request model. It owns
the transaction, the key's record (bound to the whole request model), the confirmation of a
destructive action and the audit entry. Services know nothing of MCP, HTTP or the CLI.

    booking        book a job (`book`)
    dispatch       assign a technician (`dispatch`)
    statuses       move a job along its states (`move`)
    cancellation   cancel a job, previewed then confirmed (`cancel`)
    invoicing      invoice a completed job (`invoice`)
    merge          merge duplicate customers, previewed then confirmed (`merge`)
    reads          customers, jobs, technicians, free slots, duplicate groups
"""
