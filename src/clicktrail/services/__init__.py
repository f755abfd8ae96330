"""Use cases over the domain and the ports. No SQL, HTTP or CLI parsing lives here."""
