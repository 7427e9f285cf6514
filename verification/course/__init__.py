"""Course profiles: what a course requires and forbids, checked on every submission
(``profile.py``), in its source (``sources.py``) and while it runs (``watch.py``), judged as
check results (``rules.py``)."""

from verification.course.profile import BUILTIN, Course, CourseError, load_course

__all__ = ["Course", "CourseError", "load_course", "BUILTIN"]
