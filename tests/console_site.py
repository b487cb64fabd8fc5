"""The console over the test project: a test client, users of every role, and signing in
as a browser does (the sign-in form's token, then the session cookie)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from campaigner.console.roles import Role
from campaigner.console.web import Console
from campaigner.db.models import ConsoleUser

if TYPE_CHECKING:
    from conftest import Project

PASSWORD = "correct horse battery"
# Hashed once: argon2 is slow on purpose, and every test needs four users.
PASSWORD_HASH = PasswordHasher().hash(PASSWORD)


class ConsoleSite:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.console = Console(project.settings, project.sessions, project.clock)
        with project.sessions.begin() as session:
            for role in Role:
                session.add(
                    ConsoleUser(
                        name=role.name, password_hash=PASSWORD_HASH, role=role.name, language="fa"
                    )
                )

    def client(self) -> TestClient:
        return TestClient(self.console.app(), follow_redirects=False)

    def sign_in(
        self, client: TestClient, name: str, password: str = PASSWORD, **extra: str
    ) -> httpx.Response:
        page = client.get("/console/login")
        pre = re.search(r'name="pre" value="([^"]+)"', page.text)
        assert pre, page.text
        return client.post(
            "/console/login",
            data={"pre": pre.group(1), "user": name, "password": password, **extra},
        )

    def signed_in(self, name: str) -> TestClient:
        client = self.client()
        answer = self.sign_in(client, name)
        assert answer.status_code == 303, answer.text
        return client

    @staticmethod
    def csrf(client: TestClient) -> str:
        page = client.get("/console/rules")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)
