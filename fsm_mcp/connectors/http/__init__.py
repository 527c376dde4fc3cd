"""The HTTP kit every vendor connector shares: credentials and token refresh (`auth`),
pacing and the circuit breaker (`limits`), retries and error mapping (`client`), paged
lists (`paging`)."""
