"""Graph neural network layers over CSR neighbourhoods: GAT, GIN, GraphSAGE, the attention
GNN block (GAT + LayerNorm + FFN), GNN stacks, attentional pooling and subgraph embeddings."""
from .layers import GATLayer, GINLayer, SAGELayer
from .models import GNN, AttentionalPooling, AttentionGNNLayer, subgraph_embedding

__all__ = ["GATLayer", "GINLayer", "SAGELayer", "AttentionGNNLayer", "GNN", "AttentionalPooling",
           "subgraph_embedding"]
