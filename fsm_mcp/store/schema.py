"""The schema, as numbered migrations. Every business record carries its tenant_id."""

MIGRATIONS: list[str] = [
    """
    CREATE TABLE customers (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT, name TEXT NOT NULL,
        notes TEXT, tags TEXT NOT NULL DEFAULT '[]', merged_into TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX customers_external ON customers (tenant_id, external_id);
    CREATE TABLE customer_phones (
        tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, e164 TEXT NOT NULL, extension TEXT,
        PRIMARY KEY (tenant_id, customer_id, e164)
    ) WITHOUT ROWID;
    CREATE INDEX phones_number ON customer_phones (tenant_id, e164);
    CREATE TABLE customer_emails (
        tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, email TEXT NOT NULL,
        PRIMARY KEY (tenant_id, customer_id, email)
    ) WITHOUT ROWID;
    CREATE TABLE locations (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT NOT NULL,
        street TEXT NOT NULL, unit TEXT, city TEXT, state TEXT, postal_code TEXT, country TEXT,
        access_notes TEXT, equipment TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX locations_customer ON locations (tenant_id, customer_id);
    CREATE TABLE match_keys (
        tenant_id TEXT NOT NULL, key TEXT NOT NULL, customer_id TEXT NOT NULL,
        PRIMARY KEY (tenant_id, key, customer_id)
    ) WITHOUT ROWID;
    CREATE TABLE technicians (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT, name TEXT NOT NULL, phone TEXT,
        skills TEXT NOT NULL DEFAULT '[]', active INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE jobs (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT NOT NULL, location_id TEXT,
        job_type TEXT NOT NULL, skill TEXT NOT NULL, summary TEXT NOT NULL, priority TEXT NOT NULL,
        window_start TEXT NOT NULL, window_end TEXT NOT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX jobs_customer ON jobs (tenant_id, customer_id, window_start);
    CREATE INDEX jobs_window ON jobs (tenant_id, window_start);
    CREATE TABLE job_technicians (
        tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, technician_id TEXT NOT NULL,
        PRIMARY KEY (tenant_id, job_id, technician_id)
    ) WITHOUT ROWID;
    CREATE INDEX job_technicians_tech ON job_technicians (tenant_id, technician_id);
    CREATE TABLE job_events (
        tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,
        status TEXT NOT NULL, note TEXT,
        PRIMARY KEY (tenant_id, job_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE invoices (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, job_id TEXT NOT NULL, customer_id TEXT NOT NULL,
        lines TEXT NOT NULL, subtotal TEXT NOT NULL, discount TEXT NOT NULL, tax_rate TEXT NOT NULL,
        tax TEXT NOT NULL, total TEXT NOT NULL, balance TEXT NOT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX invoices_customer ON invoices (tenant_id, customer_id);
    CREATE INDEX invoices_job ON invoices (tenant_id, job_id);
    CREATE TABLE payments (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, invoice_id TEXT NOT NULL, amount TEXT NOT NULL,
        method TEXT NOT NULL, received_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE idempotency (
        tenant_id TEXT NOT NULL, key TEXT NOT NULL, tool TEXT NOT NULL, args_hash TEXT NOT NULL,
        state TEXT NOT NULL, result TEXT, created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, tenant_id TEXT NOT NULL, tool TEXT NOT NULL,
        actor TEXT NOT NULL, arguments TEXT NOT NULL, result_id TEXT, replayed INTEGER NOT NULL DEFAULT 0
    );
    """,
    """
    CREATE TABLE identity_model (
        tenant_id TEXT NOT NULL PRIMARY KEY, model TEXT NOT NULL, trained_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE vendor_contacts (
        tenant_id TEXT NOT NULL, contact_id TEXT NOT NULL, customer_id TEXT NOT NULL, kind TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (tenant_id, contact_id)
    ) WITHOUT ROWID;
    CREATE TABLE sync_state (
        tenant_id TEXT NOT NULL, resource TEXT NOT NULL, cursor TEXT, full_done INTEGER NOT NULL DEFAULT 0,
        next_page INTEGER NOT NULL DEFAULT 1, started_at TEXT, newest TEXT,
        PRIMARY KEY (tenant_id, resource)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE api_keys (
        name TEXT NOT NULL PRIMARY KEY, tenant_id TEXT NOT NULL, scopes TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL, revoked_at TEXT
    ) WITHOUT ROWID;
    CREATE TABLE confirmations (
        tenant_id TEXT NOT NULL, digest TEXT NOT NULL, tool TEXT NOT NULL, args_hash TEXT NOT NULL,
        actor TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT,
        PRIMARY KEY (tenant_id, digest)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE leases (
        name TEXT NOT NULL PRIMARY KEY, holder TEXT NOT NULL, expires_at TEXT NOT NULL
    );
    """,
    # A vendor booking's key row is leased by the one call working on it (holder, locked_at, lease_until) and
    # carries its recovery points: the last step done (phase, phase_at) and the ids each step made (progress).
    """
    ALTER TABLE idempotency ADD COLUMN holder TEXT;
    ALTER TABLE idempotency ADD COLUMN locked_at TEXT;
    ALTER TABLE idempotency ADD COLUMN lease_until TEXT;
    ALTER TABLE idempotency ADD COLUMN phase TEXT;
    ALTER TABLE idempotency ADD COLUMN phase_at TEXT;
    ALTER TABLE idempotency ADD COLUMN progress TEXT NOT NULL DEFAULT '{}';
    """,
    # A revoked key's name may be given to a new key: keys are keyed by their digest, and a name is unique
    # among the live keys only (the revoked one stays revoked).
    """
    CREATE TABLE api_keys_by_digest (
        digest TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, tenant_id TEXT NOT NULL, scopes TEXT NOT NULL,
        created_at TEXT NOT NULL, revoked_at TEXT
    ) WITHOUT ROWID;
    INSERT INTO api_keys_by_digest (digest, name, tenant_id, scopes, created_at, revoked_at)
        SELECT digest, name, tenant_id, scopes, created_at, revoked_at FROM api_keys;
    DROP TABLE api_keys;
    ALTER TABLE api_keys_by_digest RENAME TO api_keys;
    CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
    """,
    # An imported row is known again on a rerun by its import_key (a digest of its cells and its place among
    # identical rows of its file), so a row without an external_id is not imported twice either.
    """
    ALTER TABLE customers ADD COLUMN import_key TEXT;
    CREATE UNIQUE INDEX customers_import_key ON customers (tenant_id, import_key) WHERE import_key IS NOT NULL;
    ALTER TABLE technicians ADD COLUMN import_key TEXT;
    CREATE UNIQUE INDEX technicians_import_key ON technicians (tenant_id, import_key) WHERE import_key IS NOT NULL;
    """,
    # The books (issue 20): each business's OAuth grant with its accounting system, its refresh and access
    # tokens encrypted (Fernet) and rotated under a version (one refresh at a time across replicas: a claim on
    # the row); what we made there (links: our kind and id -> their id); payments read back from there; cursors.
    """
    CREATE TABLE accounting_grants (
        tenant_id TEXT NOT NULL, provider TEXT NOT NULL, company TEXT NOT NULL, refresh_token TEXT NOT NULL,
        access_token TEXT, access_until TEXT, version INTEGER NOT NULL, claimed_by TEXT, claimed_until TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, provider)
    ) WITHOUT ROWID;
    CREATE TABLE accounting_links (
        tenant_id TEXT NOT NULL, kind TEXT NOT NULL, our_id TEXT NOT NULL, provider TEXT NOT NULL,
        their_id TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, kind, our_id, provider)
    ) WITHOUT ROWID;
    CREATE INDEX accounting_links_theirs ON accounting_links (tenant_id, provider, kind, their_id);
    CREATE TABLE accounting_payments (
        tenant_id TEXT NOT NULL, provider TEXT NOT NULL, their_id TEXT NOT NULL, invoice_id TEXT NOT NULL,
        amount TEXT NOT NULL, seen_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, provider, their_id, invoice_id)
    ) WITHOUT ROWID;
    CREATE TABLE accounting_cursors (
        tenant_id TEXT NOT NULL, provider TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (tenant_id, provider, name)
    ) WITHOUT ROWID;
    """,
    # The outbox (issue 19): one event per change, written in the change's transaction, numbered per business
    # (event_counters: the row each event's transaction locks, so events commit in seq order); webhook
    # subscribers, each with the last seq fanned out to it, and one delivery per (subscriber, event).
    """
    CREATE TABLE event_counters (tenant_id TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE events (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
        subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX events_seq ON events (tenant_id, seq);
    CREATE INDEX events_subject ON events (tenant_id, subject_type, subject_id, seq);
    CREATE INDEX events_at ON events (tenant_id, at);
    CREATE TABLE webhook_subscribers (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,
        types TEXT NOT NULL, created_at TEXT NOT NULL, disabled_at TEXT, fanned_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE webhook_deliveries (
        tenant_id TEXT NOT NULL, subscriber_id TEXT NOT NULL, event_id TEXT NOT NULL, seq INTEGER NOT NULL,
        subject TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, next_at TEXT NOT NULL,
        created_at TEXT NOT NULL, done_at TEXT, last_status INTEGER, last_error TEXT,
        PRIMARY KEY (subscriber_id, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (subscriber_id, state, next_at);
    CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (subscriber_id, subject, state, seq);
    CREATE INDEX webhook_deliveries_event ON webhook_deliveries (tenant_id, event_id);
    """,
    # Vendor job changes (issue 19): how far each business's poll of a vendor's jobs has read (the newest
    # modification time it has seen), and each job as last seen there (its state and the vendor's time of it),
    # so a sighting repeated, late or out of order has one effect.
    """
    CREATE TABLE vendor_change_cursors (
        tenant_id TEXT NOT NULL, feed TEXT NOT NULL, cursor TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, feed)
    ) WITHOUT ROWID;
    CREATE TABLE vendor_jobs_seen (
        tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, modified TEXT NOT NULL, state TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, job_id)
    ) WITHOUT ROWID;
    """,
    # Contacts (issue 21): a customer is an account (a household or a business; its name is the billing name) and
    # the people who call for it are its contacts, each phone and e-mail belonging to one of them (contact_id;
    # NULL: the account's line, nobody's in particular). Lookups by number stay one read of match_keys. Every
    # live customer gets one contact, named as the customer, owning its phones and e-mails; a record merged
    # before contacts existed becomes a contact of the record it was merged into, unless it bore that name.
    """
    CREATE TABLE contacts (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT NOT NULL, name TEXT NOT NULL, role TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX contacts_customer ON contacts (tenant_id, customer_id, name);
    ALTER TABLE customer_phones ADD COLUMN contact_id TEXT;
    ALTER TABLE customer_emails ADD COLUMN contact_id TEXT;
    INSERT INTO contacts (tenant_id, id, customer_id, name, role, created_at)
        SELECT tenant_id, 'con_' || id, id, name, 'owner', created_at FROM customers WHERE merged_into IS NULL;
    INSERT INTO contacts (tenant_id, id, customer_id, name, role, created_at)
        SELECT m.tenant_id, 'con_' || m.id, m.merged_into, m.name, NULL, m.created_at FROM customers m
        JOIN customers k ON k.tenant_id = m.tenant_id AND k.id = m.merged_into
        WHERE lower(trim(m.name)) <> lower(trim(k.name));
    UPDATE customer_phones SET contact_id = 'con_' || customer_id;
    UPDATE customer_emails SET contact_id = 'con_' || customer_id;
    """,
    # Automations (issue 19): each automation's place in its business's feed (the seq of the last event it
    # acted on), and per completed job the work to bill (lines, and where they came from), what billing came
    # to (invoiced, existing, needs_review) and when its follow-up is due and was recorded.
    """
    CREATE TABLE automation_cursors (
        tenant_id TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE automation_jobs (
        tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, lines TEXT, lines_from TEXT, billed TEXT, invoice_id TEXT,
        customer_id TEXT, follow_up_at TEXT, followed_up_at TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, job_id)
    ) WITHOUT ROWID;
    CREATE INDEX automation_jobs_follow_up ON automation_jobs (tenant_id, follow_up_at) WHERE followed_up_at IS NULL;
    """,
    # The books (issue 20): the payments recorded on one of our invoices, read on every announcement of it; and
    # the requests sent to each company by the hour, counted by every replica (Xero's 5,000 a day).
    """
    CREATE INDEX accounting_payments_invoice ON accounting_payments (tenant_id, provider, invoice_id);
    CREATE TABLE accounting_calls (
        provider TEXT NOT NULL, company TEXT NOT NULL, hour INTEGER NOT NULL, used INTEGER NOT NULL,
        PRIMARY KEY (provider, company, hour)
    ) WITHOUT ROWID;
    """,
    # Vendor invoices and payments (issue 19): each seen at the vendor, with its version and the job it bills
    # (a payment's invoice is looked up here), and when its event (invoice.created, payment.received) was
    # recorded: once, even after the outbox has forgotten it.
    """
    CREATE TABLE vendor_money_seen (
        tenant_id TEXT NOT NULL, kind TEXT NOT NULL, record_id TEXT NOT NULL, job_id TEXT, modified TEXT,
        reported_at TEXT, seen_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, kind, record_id)
    ) WITHOUT ROWID;
    """,
    # A customer's own match keys, found by its id: re-indexing one customer (every booking, merge and vendor
    # write-through does) deleted its keys by a scan of the business's whole index (1 s at 100,000 customers,
    # ~14 M entries at a million). Ids grow with time, so an import appends to this index.
    """
    CREATE INDEX match_keys_customer ON match_keys (tenant_id, customer_id);
    """,
    # An import's match keys until its end, a JSON list per new customer (ids grow with time: batches append),
    # then merged into match_keys in key order (store/directory.py, merge_pending_keys).
    """
    CREATE TABLE match_keys_pending (
        tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, keys TEXT NOT NULL,
        PRIMARY KEY (tenant_id, customer_id)
    ) WITHOUT ROWID;
    """,
]
