"""A third-party kvmnet provider for the SDK's tests: text files in a directory."""
