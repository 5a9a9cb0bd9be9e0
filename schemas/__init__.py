"""JSON Schemas (Draft 2020-12) of the built-in resource types, one file per type.

Package data only: each schema is loaded by the provider that owns its type (its
:class:`kvmnet.sdk.ResourceType` names the file here); a third-party provider
ships its own. Each describes exactly the *configured* attributes of a type
(SPEC §3), as the engine hands them to validation: without defaults, without
meta-arguments and without computed attributes; nested blocks are arrays of objects.
"""
