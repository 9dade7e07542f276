"""Programs: the user's prompt programs (app/sdk) run in processes of their own, driven and
journaled by the studio."""
