"""A submission without the Tanh the course requires (ee559 fails it: ``required/tanh``)."""

from honest_adapter import Adapter as Honest


class Adapter(Honest):
    tanh = None
