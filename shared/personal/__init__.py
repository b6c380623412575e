"""Personal data: event fields declared personal are encrypted at rest with a key per data
subject, and erasing the subject destroys its key (the history stays, unreadable there).

- `fields`: the marker (`Annotated[str, Personal(subject=...)]`) and the sealed form.
- `cipher`: AES-GCM of values under a subject's key, and of subject keys under the master key.
- `keys`: the subject keys of a service (table, cache, erasure) and revealing events for the
  owning service's own readers.
- `erasure`: `POST /v1/tenants/{t}/subjects/{subject}/erase` and the `Subject.Erased` event.
"""
