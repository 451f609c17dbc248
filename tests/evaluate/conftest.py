import pytest
from waekit_testruns import patch_npz_loader


@pytest.fixture
def use_npz_loader(monkeypatch):
    patch_npz_loader(monkeypatch)
