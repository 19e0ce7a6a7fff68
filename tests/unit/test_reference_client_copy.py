"""The reference client kept in the repository (for checkouts without ../shared beside them) is the contract's."""

from tests.e2e.refclient import CONTRACT, KEPT


def test_the_kept_copy_is_the_contracts_whenever_both_are_here():
    assert KEPT.exists()
    # Where ../shared is beside the checkout (CI, this machine), the copy must not have drifted from it.
    assert not CONTRACT.exists() or KEPT.read_text() == CONTRACT.read_text()
