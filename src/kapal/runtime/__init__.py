"""The agent's dyno runtime: slugs unpacked per release, dynos as process groups behind a
`Driver`, the level-triggered reconcile loop (pure `plan()`), the release phase, one-off dynos
and the rendezvous. It reads and writes the store only through the `StateStore` protocol and
logs through a `LogSink`; the agent's entry point supplies both."""
