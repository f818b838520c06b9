"""Change notification between the processes sharing a policy store (``GUARD_WATCHER``).

The PostgreSQL and Redis watchers live in :mod:`.postgres` and :mod:`.redis`, imported by
:func:`make_watcher` only when asked for, so that their drivers stay optional.
"""

from .base import DEFAULT_CHANNEL as DEFAULT_CHANNEL
from .base import DEFAULT_INTERVAL as DEFAULT_INTERVAL
from .base import LOGGER as LOGGER
from .base import OnChange as OnChange
from .base import VersionReader as VersionReader
from .base import Watcher as Watcher
from .base import make_watcher as make_watcher
from .poll import PollWatcher as PollWatcher
from .thread import ThreadWatcher as ThreadWatcher
