"""KFP components, one file each. Every body is a thin adapter: it imports the step's
plain function from ``components`` and calls it with the artifact paths KFP hands over.
(Lightweight components are serialized alone, hence the import inside each body.)"""
