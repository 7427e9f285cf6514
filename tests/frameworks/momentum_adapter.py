"""Adapter for the ``momentum`` fixture framework: its optimisers take settings
(``optimizer_settings``), its SGD's momentum is 0.9 by default, and it has RMSprop
(``optimizers``).

Planted-bug subclasses: ``MomentumScaledTwice`` and ``DampeningIgnored``.
"""

import momentum as fw


class Adapter:
    """Builds the correct momentum components."""

    optimizers = {"RMSprop": "rmsprop"}
    optimizer_settings = {"sgd": ("momentum", "dampening", "nesterov", "weight_decay"),
                          "adam": ("weight_decay", "amsgrad"),
                          "rmsprop": ("alpha", "eps", "weight_decay", "momentum", "centered")}

    def linear(self, in_features, out_features, generator):
        return fw.Linear(in_features, out_features, generator)

    def tanh(self):
        return fw.Tanh()

    def sequential(self, *modules):
        return fw.Sequential(*modules)

    def mse_loss(self):
        return fw.MSE()

    def sgd(self, params, lr, **settings):
        return fw.SGD(params, lr, **settings)

    def adam(self, params, lr, betas, eps, **settings):
        return fw.Adam(params, lr, betas, eps, **settings)

    def rmsprop(self, params, lr, **settings):
        return fw.RMSprop(params, lr, **settings)


class MomentumScaledTwice(Adapter):
    """SGD steps by η·μ·b instead of η·b."""

    def sgd(self, params, lr, **settings):
        return fw.ScaledMomentumSGD(params, lr, **settings)


class DampeningIgnored(Adapter):
    """SGD's momentum buffer ignores dampening."""

    def sgd(self, params, lr, **settings):
        return fw.UndampedSGD(params, lr, **settings)


PLANTED = {
    "MomentumScaledTwice": ("sgd", "trajectory"),
    "DampeningIgnored": ("sgd", "trajectory"),
}
