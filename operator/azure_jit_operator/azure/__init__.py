"""Azure adapter: the only place that imports azure.* (async mgmt clients, credential,
retries and throttling, mapping between domain values and SDK models)."""
