"""The dataset's size limits, alone in a module: planning checks user values against them on every dry run
without importing the dataset's value types."""

#: Token ids are pre-encoded as 8-byte words (up to 7 digits plus a separator), hence this limit.
MAX_VOCAB_SIZE = 10_000_000
#: Far beyond any model's context, and short enough for the writer's fixed-width line framing.
MAX_TOKENS = 100_000_000
MAX_REQUESTS = 1_000_000_000_000
