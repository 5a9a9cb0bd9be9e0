"""The entry point ``kvmnet.providers: dummy``."""
from kvmnet.sdk import Plugin

from kvmnet_dummy.types import DUMMY_FILE

PLUGIN = Plugin(name="dummy", provider="kvmnet_dummy.provider:DummyProvider",
                types=(DUMMY_FILE,), layers={"dummy": 80})
