"""zh-Hans formats: Django's, with amounts grouped by thousands (1,234,567.89) as Chinese
bank statements and reports write money."""

from django.conf.locale.zh_Hans.formats import *  # noqa: F403

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
