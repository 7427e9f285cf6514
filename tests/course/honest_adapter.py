"""The honest submission: ``handmade`` under the course's rules (ee559 passes it)."""

import handmade as fw


class Adapter:
    def linear(self, in_features, out_features, generator):
        return fw.Linear(in_features, out_features, generator)

    def relu(self):
        return fw.ReLU()

    def tanh(self):
        return fw.Tanh()

    def sequential(self, *modules):
        return fw.Sequential(*modules)

    def mse_loss(self):
        return fw.MSE()

    def sgd(self, params, lr):
        return fw.SGD(params, lr)
