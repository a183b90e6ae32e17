"""Fraud model: features, training, a pickle-free artifact, in-process inference.

Runtime code here imports only the standard library, numpy and lightgbm; evaluation
(`fraud.model.evaluate`) additionally uses scikit-learn and matplotlib.
"""
