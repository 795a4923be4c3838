"""Use cases between the thin kopf handlers and the adapters: keeping a JitPolicy equal in
Azure, and walking a JitAccessRequest through its lifecycle. No kopf imports here."""
