"""Fault drills: the service as real processes under faults, counted from the receiver's side.

Each drill is a program, `python -m drills.<name> [--short]`, ending with one line
`RESULT <drill>: expected=<n> delivered=<n> duplicates=<n> missing=<n> (<verdict>)`:

    replicas          three replicas on one PostgreSQL schema, exactly once
    kill              kill -9 of one of two replicas with deliveries in flight
    postgres_restart  PostgreSQL restarted under the service (restarts this machine's server)
    receiver_down     the webhook receiver gone for a while; retries until it is back
    downtime          the service stopped for a while; the catch-up policies on restart

See docs/RELIABILITY.md for what each one showed.
"""
