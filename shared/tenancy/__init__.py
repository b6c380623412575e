"""Tenancy: a tenant is a province (wilayah), identified by its 2-digit Kemendagri code."""

from shared.tenancy.provinces import NATIONAL, Province, load_provinces, province_codes

__all__ = ["NATIONAL", "Province", "load_provinces", "province_codes"]
