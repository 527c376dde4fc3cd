"""Who may call what: callers and their scopes, API keys and OAuth tokens, the gate every
call passes (tools a caller may not use are hidden and refused, per-caller rate limits),
confirmation of destructive actions, masking of personal data, and the HTTP app that puts
authentication, Host/Origin checks, request size and session bounds in front of /mcp.

Nothing here knows a tool's business rules; tools know nothing of HTTP."""
