"""Settings for the Membership Operations Portal.

Every environment value is read here through django-environ. Defaults exist only for
what is safe in development: an embedded SQLite database and eager Celery. With
DJANGO_ENV=production the process refuses to start without SECRET_KEY, ALLOWED_HOSTS
and DATABASE_URL.
"""

import ipaddress
import sys
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.schedules import BEAT_SCHEDULE

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    missing = [
        name
        for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "PERSONAL_DATA_KEYS")
        if not env.str(name, default="").strip()
    ]
    if missing:
        raise ImproperlyConfigured(
            "Production settings need these environment variables: "
            + ", ".join(missing)
            + ". Set them (see README.md, 'Configuration') and start again."
        )

SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me")
#: Keys of personal data at rest (phone and ID number: portal/crypto.py), comma separated
#: `key-id:base64 of 32 bytes`, the current key first, older ones after it until
#: `manage.py personal_data_key rotate` has moved every row off them (docs/operations.md).
#: Outside production a fixed, published development key stands in: never for real data.
PERSONAL_DATA_KEYS = env.list(
    "PERSONAL_DATA_KEYS",
    default=[] if PRODUCTION else ["dev:ZGV2ZWxvcG1lbnQtb25seSBrZXksIG5vdCBzZWNyZXQ="],
)
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    # BasicAppConfig: the theme without replacing admin.site, so PortalAdminSite (entry by
    # the permission matrix) stays the admin site.
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "rules.apps.AutodiscoverRulesConfig",
    "axes",
    "pgtrigger",
    "pghistory",
    "portal",
    "members",
    "benefits",
    "campaigns",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy (CONTENT_SECURITY_POLICY below), then inside it our headers:
    # the admin's CSP allowances, Permissions-Policy, no-store on customer data.
    "csp.middleware.CSPMiddleware",
    "portal.security_headers.SecurityHeadersMiddleware",
    # JSON errors for every /api/ address, also those raised outside a DRF view (404, 500,
    # 503 for a database outage with Retry-After): near the top, so it sees every layer.
    "portal.api.middleware.ApiErrorMiddleware",
    # 400 for NUL or control characters in the path, query or form values (never a 500
    # from the database), before any view or the CSRF check reads them.
    "portal.input_guard.InputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A session of a system integration account is ended and refused (API token only).
    "portal.accounts.SystemAccountSessionMiddleware",
    # pghistory's HistoryMiddleware (+ client address): every write of a request is recorded
    # with its user and URL in the audit trail (PostgreSQL only).
    "portal.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: turns a lockout flagged during the request into the
    # lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "operations.context_processors.navigation",
                "operations.context_processors.scheme_notice",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the demo server read while a command writes; a generous timeout avoids
    # "database is locked" while seed_demo or import_feed holds the write lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-131072;"
            ),
        }
    )
elif env.bool("DB_POOL", default=False):
    # psycopg 3's own pool; never together with persistent connections (CONN_MAX_AGE).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses every attempt while the username + address is locked out, before a
    # password is checked. It also refuses authenticate() calls without a request (they
    # would escape throttling); tests log in with force_login or pass request=HttpRequest().
    "axes.backends.AxesStandaloneBackend",
    "rules.permissions.ObjectPermissionBackend",
    # Django's ModelBackend, refusing system integration accounts (API token only).
    "portal.accounts.StaffModelBackend",
]
#: Bank policy: at least PASSWORD_MIN_LENGTH characters (never fewer than 10, whatever the
#: environment says), not like the user's name or e-mail, not common, not only digits.
PASSWORD_MIN_LENGTH = env.int("PASSWORD_MIN_LENGTH", default=10)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": max(PASSWORD_MIN_LENGTH, 10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
#: our zh-Hans formats group amounts by thousands (portal/formats/zh_Hans/formats.py)
FORMAT_MODULE_PATH = ["portal.formats"]
#: Our catalogues first (makemessages writes there); then strings of the admin theme, which
#: ships no zh-Hans translation, kept apart so makemessages never marks them obsolete.
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_vendor"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")

# --- Sessions and cookies -----------------------------------------------------------------
#: Inactivity timeout: every request saves the session and pushes its expiry this many
#: seconds ahead, so a session idle for longer is gone (the next page asks to log in).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
#: The cookie dies with the browser too; the server-side expiry above still applies.
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Login throttling (django-axes) ------------------------------------------------------
# Every login form (/login/ and /admin/login/) authenticates through AxesStandaloneBackend.
# Failures are counted per username *and* client address, so a user mistyping cannot lock
# out a colleague at the same branch, and an attacker at one address is stopped after
# AXES_FAILURE_LIMIT tries on an account. Attempts are kept in the database (AccessAttempt,
# visible in the admin) and are lifted by the cool-off, `manage.py axes_reset_username`, or
# deleting the attempt in the admin.
#: Not read from the environment: no deployment may switch throttling off.
AXES_ENABLED = True
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
#: Minutes a lockout lasts; 0 keeps the account locked until an administrator resets it.
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES) if AXES_COOLOFF_MINUTES > 0 else None
AXES_RESET_ON_SUCCESS = True
#: 429 Too Many Requests with the lockout page (how long the lock lasts, whom to contact).
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
#: Attempts are counted per client address as the audit trail records it (TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "portal.middleware.client_ip"

# --- Client address behind a reverse proxy -----------------------------------------------
#: Addresses or CIDR networks of our own reverse proxies / load balancers, comma separated.
#: Only a request whose peer (REMOTE_ADDR) is one of them has its X-Forwarded-For read; the
#: client is then the right-most address there that is not a trusted proxy. Empty (the
#: default): REMOTE_ADDR is the client and X-Forwarded-For is ignored, as it must be when
#: the portal is reached directly. Used by the audit trail and by login throttling alike
#: (portal.middleware.client_ip).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:  # a typo must stop the start, not trust nobody (or everybody)
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as bad:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {bad} (addresses or CIDRs)") from bad

# --- Content-Security-Policy (django-csp) ------------------------------------------------
#: Scripts from the portal only, or inline with the request's nonce; what the admin theme
#: needs on top is added on its pages only (portal/security_headers.py, which also explains
#: the style decisions).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-elem": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "portal.api.exceptions.exception_handler",
    # JSON only (no API view takes a form): numbers as Decimal, NUL and deep nesting a 400
    "DEFAULT_PARSER_CLASSES": ["portal.api.parsers.JSONParser"],
    "COERCE_DECIMAL_TO_STRING": True,
}
#: the largest feed file the portal's upload takes (bigger ones: the import_feed command)
FEED_UPLOAD_MAX_BYTES = env.int("FEED_UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
#: the `Retry-After` of the API's 503 when the database is unavailable, in seconds
API_RETRY_AFTER_SECONDS = env.int("API_RETRY_AFTER_SECONDS", default=5)
#: the largest request body (not counting uploaded files) in bytes — Django's default,
#: stated: a full batch of 1,000 events is about 230 KB; an API request over it is answered
#: 413 `request_too_large` (portal.api.middleware)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
#: searches by a full ID or mobile number (audited like a reveal) a user may make per window
#: (members/services/personal_search.py)
#: the longest a manual tier may be asked for, in months (members/services/overrides.py)
TIER_OVERRIDE_MAX_MONTHS = env.int("TIER_OVERRIDE_MAX_MONTHS", default=12)
PERSONAL_SEARCH_LIMIT = env.int("PERSONAL_SEARCH_LIMIT", default=20)
PERSONAL_SEARCH_WINDOW_MINUTES = env.int("PERSONAL_SEARCH_WINDOW_MINUTES", default=60)
SPECTACULAR_SETTINGS = {
    "TITLE": "Membership Operations Portal API",
    "DESCRIPTION": "Member centre, member events, approvals and configuration (docs/api.md).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Campaign targeting and task offers both use the lifecycle stage choices: one enum name.
    "ENUM_NAME_OVERRIDES": {
        "LifecycleStageEnum": "members.choices.LifecycleStage",
        "CampaignStatusEnum": "campaigns.choices.CampaignStatus",
    },
    # Every operation's error answers with their JSON body, and the request limit below.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api.schema.error_responses",
    ],
}

# --- Celery -----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers keep the project's log handlers (and their masking filter) instead of Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
#: A publish gives up on an unreachable broker after this many seconds of reconnecting
#: (kombu's default is 4 s plus its back-off sleeps), so a page that queues a task answers.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_RESULT_EXPIRES = 24 * 60 * 60

CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE

# --- Nightly chain -----------------------------------------------------------------------
#: Split the tier and lifecycle recompute into this many member-id ranges (each one
#: set-based statement set); more chunks = smaller transactions.
TIER_RECOMPUTE_CHUNKS = env.int("TIER_RECOMPUTE_CHUNKS", default=1)
#: Lifecycle thresholds (API.md defaults in members.services.LIFECYCLE_DEFAULTS).
LIFECYCLE_RULES: dict = {}
#: A running step refreshes its JobRun's heartbeat this often (seconds)…
NIGHTLY_HEARTBEAT_SECONDS = env.int("NIGHTLY_HEARTBEAT_SECONDS", default=15)
#: …and a RUNNING step whose heartbeat is older than this has died: the next run of its date
#: (or the sweep) marks it ABANDONED and supersedes it.
NIGHTLY_STALE_AFTER_SECONDS = env.int("NIGHTLY_STALE_AFTER_SECONDS", default=120)
#: The longest a chunk of a chord may take; past it the watchdog re-dispatches the ranges
#: that have not reported (the broker's visibility timeout is sized from it as well).
NIGHTLY_CHUNK_TIMEOUT_SECONDS = env.int("NIGHTLY_CHUNK_TIMEOUT_SECONDS", default=30 * 60)
#: Beat's nightly task catches up at most this many missed business dates, oldest first.
NIGHTLY_CATCH_UP_DAYS = env.int("NIGHTLY_CATCH_UP_DAYS", default=7)
#: A task taken by a worker that then dies goes back to the queue after this long (Redis
#: transport): a little longer than the longest chunk, so a slow chunk is never run twice.
#: The socket timeouts bound a connect to a broker that is down or unreachable and a
#: command on a connection the broker dropped silently (kombu waits forever without them);
#: the socket timeout stays above the worker's 1 s BRPOP.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": NIGHTLY_CHUNK_TIMEOUT_SECONDS + 300,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}

# --- Benefits ----------------------------------------------------------------------------
#: Manual grants above this unit cost (fen) need a budget approver's approval.
BENEFIT_MANUAL_GRANT_LIMIT_FEN = env.int("BENEFIT_MANUAL_GRANT_LIMIT_FEN", default=50_000)
#: A benefit whose redemption rate is below this share (%) is flagged in the demand report.
BENEFIT_LOW_DEMAND_PERCENT = env.int("BENEFIT_LOW_DEMAND_PERCENT", default=20)

# --- Points and campaigns ----------------------------------------------------------------
#: What one point costs the campaign budget that issues it, in fen (1 point = 0.01 CNY).
POINT_VALUE_FEN = env.int("POINT_VALUE_FEN", default=1)
#: When earned points expire (members.points.EXPIRY_POLICIES): "NEXT_YEAR_END" (31 December
#: of the year after earning, as most Chinese banks do) or "MONTHS" with POINTS_EXPIRY_MONTHS.
POINTS_EXPIRY_POLICY = env.str("POINTS_EXPIRY_POLICY", default="NEXT_YEAR_END")
POINTS_EXPIRY_MONTHS = env.int("POINTS_EXPIRY_MONTHS", default=24)
#: An event stamped further in the future than this (clock skew allowance) is refused.
EVENT_FUTURE_TOLERANCE_SECONDS = env.int("EVENT_FUTURE_TOLERANCE_SECONDS", default=300)
#: Events older than this many days are refused (a replay of ancient history is a mistake).
EVENT_MAX_AGE_DAYS = env.int("EVENT_MAX_AGE_DAYS", default=400)
#: Events that occurred inside a campaign window still count this many days after it ends
#: (late deliveries); then the night ends the campaign.
CAMPAIGN_LATE_EVENT_GRACE_DAYS = env.int("CAMPAIGN_LATE_EVENT_GRACE_DAYS", default=3)

# --- Feeds ------------------------------------------------------------------------------
FEED_STAGING_CHUNK_ROWS = env.int("FEED_STAGING_CHUNK_ROWS", default=20_000)

# --- Admin theme (django-unfold) ----------------------------------------------------------
#: The admin is the portal's back office: the portal's name, mark, favicon and colours
#: (portal/static/portal/portal.css: brand red #b91c1c on slate), and a way back to it.
UNFOLD = {
    "SITE_TITLE": _("Membership Operations Portal"),
    "SITE_HEADER": _("Membership Operations"),
    "SITE_SUBHEADER": _("Back office"),
    "SITE_URL": "/",
    "SITE_ICON": "portal.admin_base.brand_icon",
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": "portal.admin_base.brand_icon"},
    ],
    "SITE_DROPDOWN": [
        {"icon": "arrow_back", "title": _("Back to the portal"), "link": "/"},
    ],
    "SHOW_LANGUAGES": True,
    "SHOW_HISTORY": True,
    "COLORS": {
        "base": {
            "50": "#f8fafc",
            "100": "#f1f5f9",
            "200": "#e2e8f0",
            "300": "#cbd5e1",
            "400": "#94a3b8",
            "500": "#64748b",
            "600": "#475569",
            "700": "#334155",
            "800": "#1e293b",
            "900": "#0f172a",
            "950": "#020617",
        },
        "primary": {
            "50": "#fef2f2",
            "100": "#fee2e2",
            "200": "#fecaca",
            "300": "#fca5a5",
            "400": "#f87171",
            "500": "#ef4444",
            "600": "#b91c1c",
            "700": "#991b1b",
            "800": "#7f1d1d",
            "900": "#671717",
            "950": "#450a0a",
        },
        "font": {
            "subtle-light": "var(--color-base-500)",
            "subtle-dark": "var(--color-base-400)",
            "default-light": "var(--color-base-600)",
            "default-dark": "var(--color-base-300)",
            "important-light": "var(--color-base-900)",
            "important-dark": "var(--color-base-100)",
        },
    },
}

# Every handler carries the personal-data filter (portal/logging.py). The "django" and
# "django.server" loggers are set here so that Django's default handlers, which would not
# carry it, are replaced; error e-mails are built by a reporter that masks them too.
# Error pages and reports mask phone and ID numbers (portal/logging.py).
DEFAULT_EXCEPTION_REPORTER = "portal.logging.MaskingExceptionReporter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "personal_data": {"()": "portal.logging.PersonalDataFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["personal_data"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["personal_data"],
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "personal_data"],
            "reporter_class": "portal.logging.MaskingExceptionReporter",
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}

#: Management commands print their own output only (`import_feed` ends with its summary
#: line, `run_nightly` with one line per step): the start-up logging of third-party apps
#: (django-axes' "AXES: BEGIN …") is kept to warnings there; the server keeps it.
MANAGEMENT_COMMAND = (
    Path(sys.argv[0]).name == "manage.py" and len(sys.argv) > 1 and sys.argv[1] != "runserver"
)
if MANAGEMENT_COMMAND:
    LOGGING["loggers"]["axes"] = {"level": "WARNING"}
