"""Every role's contract on the memory backend, which has them all."""

from pathlib import Path

from tests.contract.archive_suite import ArchiveLedgerContract
from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.filelog_suite import FileLogContract
from tests.contract.links_suite import LinkIndexContract
from tests.contract.search_suite import SearchIndexContract
from tests.contract.suite import ThreadLogContract
from tests.contract.usage_suite import UsageIndexContract, UsagePricingContract
from threadline.recorders import MemoryRecorder


class MemoryBackend:
    async def make_recorder(self, tmp_path: Path) -> MemoryRecorder:
        return MemoryRecorder()


class TestMemoryThreadLog(MemoryBackend, ThreadLogContract):
    pass


class TestMemoryArchiveLedger(MemoryBackend, ArchiveLedgerContract):
    pass


class TestMemoryLinkIndex(MemoryBackend, LinkIndexContract):
    pass


class TestMemoryUsageIndex(MemoryBackend, UsageIndexContract):
    pass


class TestMemoryUsagePricing(MemoryBackend, UsagePricingContract):
    pass


class TestMemorySearchIndex(MemoryBackend, SearchIndexContract):
    pass


class TestMemoryFileLog(MemoryBackend, FileLogContract):
    pass


class TestMemoryChangeFeed(MemoryBackend, ChangeFeedContract):
    pass
