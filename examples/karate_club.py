"""Semi-supervised node classification on Zachary's karate club (NetworkX's built-in copy).

One labelled node per faction (node 0, "Mr. Hi", and node 33, "Officer"), identity features,
a 2-layer GAT trained with Adam on the cross-entropy of the two labelled nodes; prints the
accuracy on the 32 unlabelled members against the majority baseline.

    python examples/karate_club.py
"""
import networkx as nx
import numpy as np

from ruvector import GATLayer, GNN
from ruvector.training import AdamW
from ruvector.graph import GraphStore


def run(epochs=200, seed=0, progress=False):
    G = nx.karate_club_graph()
    store = GraphStore.from_networkx(G)
    labels = np.array([0 if G.nodes[n]["club"] == "Mr. Hi" else 1 for n in G], np.int64)
    x = np.eye(G.number_of_nodes(), dtype=np.float32)
    train = np.zeros(len(labels), bool)
    train[[0, 33]] = True
    model = GNN([GATLayer(x.shape[1], 8, heads=4, seed=seed),
                 GATLayer(32, 2, heads=1, seed=seed + 1)], activation="relu")
    opt = AdamW(model, lr=0.01, weight_decay=5e-4)
    history = model.fit(store, labels, train, epochs=epochs, loss="cross_entropy", optimizer=opt,
                        x=x, progress=progress)
    pred = model.predict(store, x=x).argmax(axis=1)
    test = ~train
    accuracy = float((pred[test] == labels[test]).mean())
    majority = float(max(np.mean(labels[test] == c) for c in (0, 1)))
    return {"accuracy": accuracy, "majority_baseline": majority, "final_loss": history[-1],
            "first_loss": history[0], "epochs": epochs}


if __name__ == "__main__":
    result = run(progress=True)
    print(f"karate club, 1 labelled node per faction, 2-layer GAT: test accuracy "
          f"{result['accuracy']:.3f} (majority baseline {result['majority_baseline']:.3f}); "
          f"loss {result['first_loss']:.3f} -> {result['final_loss']:.4f}")
