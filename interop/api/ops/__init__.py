"""Extended operations: each module here registers its ``$name`` handlers with
``interop.api.operations.operation`` and is imported when the app is built."""
