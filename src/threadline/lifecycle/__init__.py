"""Lifecycle: archive inactive threads to cold storage, restore them, recover
interrupted operations (:mod:`~threadline.lifecycle.archive`), and check or
repair a store from its logs (:mod:`~threadline.lifecycle.doctor`)."""

from threadline.lifecycle.archive import ColdStorage, Lifecycle, default_cold_storage
from threadline.lifecycle.doctor import DoctorReport, run_doctor

__all__ = ["ColdStorage", "DoctorReport", "Lifecycle", "default_cold_storage", "run_doctor"]
