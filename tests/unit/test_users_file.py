"""The users file is parsed strictly; passwords may be argon2 hashes (issue 11)."""

import io
import logging

import pytest

from arangotasks.auth import Authenticator
from arangotasks.cli import main
from arangotasks.config import Settings, load_access
from arangotasks.passwords import hash_password


def access_of(tmp_path, toml: str):
    path = tmp_path / "users.toml"
    path.write_text(toml)
    return load_access(Settings(data_dir=tmp_path / "data", jwt_secret="s" * 40, config=path))


def error_of(tmp_path, toml: str) -> str:
    with pytest.raises(ValueError) as info:
        access_of(tmp_path, toml)
    return str(info.value)


def test_a_string_superuser_is_an_error_not_a_superuser(tmp_path):
    message = error_of(tmp_path, '[[users]]\nname = "eve"\npassword = "x"\nsuperuser = "false"\n')
    assert message == (
        "config: user 'eve': field 'superuser' is 'false'; "
        "allowed values: true or false (a TOML boolean, not a string)"
    )


def test_a_user_without_password_is_an_error_and_an_empty_one_is_allowed(tmp_path):
    message = error_of(tmp_path, '[[users]]\nname = "dan"\n')
    assert "'password' is 5; allowed values: a string" in error_of(
        tmp_path, '[[users]]\nname = "dan"\npassword = 5\n'
    )
    assert message.startswith("config: user 'dan': field 'password' is missing; allowed values:")
    access = access_of(tmp_path, '[[users]]\nname = "dan"\npassword = ""\n')
    assert access.users["dan"].password == ""


@pytest.mark.parametrize(
    ("entry", "field", "allowed"),
    [
        ('access = "admin"', "'access' is 'admin'", '"rw" or "ro"'),
        ("access = 1", "'access' is 1", '"rw" or "ro"'),
        ('databases = "shop"', "'databases' is 'shop'", "a list of database names"),
        ("databases = [1]", "'databases'", "a list of database names"),
        ("superuser = 1", "'superuser' is 1", "true or false"),
    ],
)
def test_each_field_names_its_allowed_values(tmp_path, entry, field, allowed):
    message = error_of(tmp_path, f'[[users]]\nname = "eve"\npassword = "x"\n{entry}\n')
    assert message.startswith(f"config: user 'eve': field {field}")
    assert allowed in message


def test_unknown_fields_duplicates_and_nameless_entries_are_errors(tmp_path):
    message = error_of(tmp_path, '[[users]]\nname = "eve"\npassword = "x"\nsuperusr = true\n')
    assert "unknown field 'superusr' (allowed fields: name, password, access" in message
    message = error_of(tmp_path, '[[users]]\npassword = "x"\n')
    assert message.startswith("config: [[users]] entry #1: field 'name' is missing")
    twice = '[[users]]\nname = "a"\npassword = "x"\n' * 2
    assert error_of(tmp_path, twice) == "config: user 'a' is defined twice"
    assert "does not parse" in error_of(
        tmp_path, '[[users]]\nname = "a"\npassword = "$argon2id$v=19$broken"\n'
    )


def test_a_valid_file_still_loads(tmp_path):
    access = access_of(
        tmp_path,
        'databases = ["shop"]\n[[users]]\nname = "a"\npassword = "p"\naccess = "ro"\n'
        'databases = ["shop"]\n[[users]]\nname = "ops"\npassword = "o"\nsuperuser = true\n',
    )
    assert access.users["a"].databases == frozenset({"shop"})
    assert access.users["a"].access == "ro" and not access.users["a"].superuser
    assert access.users["ops"].superuser


def test_plain_text_passwords_are_accepted_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="arangotasks.config"):
        access_of(tmp_path, '[[users]]\nname = "a"\npassword = "p"\n')
    assert any("user 'a' has a plain-text password" in r.getMessage() for r in caplog.records)


async def test_hashed_passwords_log_in_and_wrong_ones_do_not(tmp_path):
    hashed = hash_password("s3cret")
    assert hashed.startswith("$argon2id$")
    access = access_of(tmp_path, f'[[users]]\nname = "h"\npassword = "{hashed}"\n')
    auth = Authenticator(access, Settings(data_dir=tmp_path, jwt_secret="s" * 40))
    assert (await auth.login("h", "s3cret", "a")) is not None
    assert (await auth.login("h", "s3cret", "a")) is not None  # the remembered digest
    assert (await auth.login("h", "wrong", "a")) is None
    assert (await auth.login("h", hashed, "a")) is None  # the hash is not the password


async def test_hash_password_command_makes_a_hash_the_server_accepts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("pw with spaces\n"))
    assert main(["hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    access = access_of(tmp_path, f"[[users]]\nname = 'h'\npassword = '{hashed}'\n")
    auth = Authenticator(access, Settings(data_dir=tmp_path, jwt_secret="s" * 40))
    assert (await auth.login("h", "pw with spaces", "a")) is not None
