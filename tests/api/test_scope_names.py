"""Tenant and database names: Chroma's name rule, bad names refused before anything is created."""

import pytest

import gleandb
from gleandb.errors import InvalidArgumentError, NotFoundError

BAD = ["../../etc", "a/b/c", "ab\x00cd", "ab\ncd", "x" * 5000, "x" * 513, "ab..cd", "-abc", "abc-", "a b c",
       "héllo", "abc/", "ab\\cd"]
GOOD = ["abc", "default_tenant2", "a.b-c_d", "A1" + "x" * 508 + "Z9"]


@pytest.fixture
def admin(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    a = gleandb.AdminClient(gleandb.Settings(is_persistent=True, persist_directory=str(tmp_path)))
    yield a
    a.close()


@pytest.mark.parametrize("name", BAD, ids=lambda n: repr(n[:12]))
def test_bad_tenant_and_database_names_are_refused(admin, name):
    with pytest.raises(InvalidArgumentError) as e:
        admin.create_tenant(name)
    msg = str(e.value)
    assert "tenant name" in msg and "[a-zA-Z0-9._-]" in msg
    assert repr(name[:64]) in msg and "\x00" not in msg and "\n" not in msg and len(msg) < 400
    with pytest.raises(NotFoundError):
        admin.get_tenant(name)
    with pytest.raises(InvalidArgumentError, match="database name"):
        admin.create_database(name)
    assert name not in [d["name"] for d in admin.list_databases()]
    # creating a database under a missing tenant creates the tenant: its name is checked too
    with pytest.raises(InvalidArgumentError, match="tenant name"):
        admin.create_database("fine", tenant=name)
    with pytest.raises(NotFoundError):
        admin.get_tenant(name)


@pytest.mark.parametrize("name", GOOD, ids=lambda n: n[:12])
def test_good_names_are_created(admin, name):
    admin.create_tenant(name)
    admin.create_database(name, tenant=name)
    assert admin.get_database(name, tenant=name)["name"] == name
