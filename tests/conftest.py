import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread_default(monkeypatch):
    """Unit tests are tiny: keep torch's thread pool small so they stay fast and repeatable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tmp_home(tmp_path, monkeypatch):
    """Point the store (artifacts/, results/) at a temporary folder."""
    monkeypatch.setenv("GEOVQ_HOME", str(tmp_path))
    return tmp_path
