"""open_queue: the queue that settings name, and clear errors for those it cannot use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from genofed.archive.dbqueue import DatabaseQueue
from genofed.archive.queue import InvalidQueueUrl, open_queue
from genofed.archive.rabbitmq import RabbitQueue, broker_address
from genofed.config import Settings
from genofed.db import upgrade


def settings(tmp_path: Path, queue_url: str) -> Settings:
    return Settings(home=tmp_path, queue_url=SecretStr(queue_url))


def test_no_queue_url_means_the_database_queue(tmp_path: Path) -> None:
    config = settings(tmp_path, "")
    upgrade(config.database_url)
    queue = open_queue(config)
    assert isinstance(queue, DatabaseQueue)
    assert asyncio.run(queue.depths())["ingest"] == 0
    asyncio.run(queue.close())


@pytest.mark.parametrize("url", ["amqp://u:p@broker:5672/", "AMQPS://u:p@broker/genofed"])
def test_an_amqp_url_means_rabbitmq_connected_on_first_use(tmp_path: Path, url: str) -> None:
    queue = open_queue(settings(tmp_path, url))
    assert isinstance(queue, RabbitQueue)
    assert queue.name("verify", "delay") == "genofed.verify.delay"


@pytest.mark.parametrize(
    ("url", "shown"),
    [("redis://user:Secr3t@cache:6379/0", "a 'redis' URL"), ("broker:5672", "a 'broker' URL")],
)
def test_another_url_is_a_clear_error_without_the_password(
    tmp_path: Path, url: str, shown: str
) -> None:
    with pytest.raises(InvalidQueueUrl) as raised:
        open_queue(settings(tmp_path, url))
    text = str(raised.value)
    assert text.startswith(f"queue_url is {shown}: leave it empty for the database queue")
    assert "Secr3t" not in text and "GENOFED_QUEUE_URL" in text


def test_an_amqp_url_with_a_bad_port_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(InvalidQueueUrl, match="not a valid RabbitMQ URL") as raised:
        open_queue(settings(tmp_path, "amqp://u:Secr3t@broker:99999/"))
    assert "Secr3t" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("amqp://u:p@rabbit.example.org/", "rabbit.example.org:5672 (vhost /)"),
        (
            "amqps://u:p@rabbit.example.org:5671/fega%2Fse",
            "rabbit.example.org:5671 (vhost fega/se)",
        ),
        ("amqp://localhost", "localhost:5672 (vhost /)"),
    ],
)
def test_the_broker_address_names_host_port_and_vhost_only(url: str, address: str) -> None:
    assert broker_address(url) == address
