"""Every role's contract on SQLite, which has them all, on a file and in memory."""

from pathlib import Path

from tests.contract.archive_suite import ArchiveLedgerContract
from tests.contract.feed_suite import ChangeFeedContract
from tests.contract.filelog_suite import FileLogContract
from tests.contract.links_suite import LinkIndexContract
from tests.contract.search_suite import SearchIndexContract
from tests.contract.suite import ThreadLogContract
from tests.contract.usage_suite import UsageIndexContract, UsagePricingContract
from threadline.recorders import SqliteRecorder


class SqliteFile:
    async def make_recorder(self, tmp_path: Path) -> SqliteRecorder:
        return SqliteRecorder(tmp_path / "threads.db")


class SqliteMemory:
    async def make_recorder(self, tmp_path: Path) -> SqliteRecorder:
        return SqliteRecorder(":memory:")


class TestSqliteFileThreadLog(SqliteFile, ThreadLogContract):
    pass


class TestSqliteFileArchiveLedger(SqliteFile, ArchiveLedgerContract):
    pass


class TestSqliteFileLinkIndex(SqliteFile, LinkIndexContract):
    pass


class TestSqliteFileUsageIndex(SqliteFile, UsageIndexContract):
    pass


class TestSqliteFileUsagePricing(SqliteFile, UsagePricingContract):
    pass


class TestSqliteFileSearchIndex(SqliteFile, SearchIndexContract):
    pass


class TestSqliteFileFileLog(SqliteFile, FileLogContract):
    pass


class TestSqliteFileChangeFeed(SqliteFile, ChangeFeedContract):
    pass


class TestSqliteMemoryThreadLog(SqliteMemory, ThreadLogContract):
    pass


class TestSqliteMemoryArchiveLedger(SqliteMemory, ArchiveLedgerContract):
    pass


class TestSqliteMemoryLinkIndex(SqliteMemory, LinkIndexContract):
    pass


class TestSqliteMemoryUsageIndex(SqliteMemory, UsageIndexContract):
    pass


class TestSqliteMemorySearchIndex(SqliteMemory, SearchIndexContract):
    pass


class TestSqliteMemoryFileLog(SqliteMemory, FileLogContract):
    pass


class TestSqliteMemoryChangeFeed(SqliteMemory, ChangeFeedContract):
    pass
