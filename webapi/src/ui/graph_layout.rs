//! The layered (Sugiyama-style) layout of a DAG graph, left to right, pure:
//! nodes and edges in, boxes and edge paths out.
//!
//! 1. Layers: a node's layer is the longest path to it from a root, so every
//!    edge goes to a later layer.
//! 2. An edge spanning several layers gets a dummy point in each layer it
//!    crosses, so it can be routed between the boxes (up to [`MAX_DUMMIES`]).
//! 3. Order within layers: barycenter sweeps, down then up, keeping the order
//!    with the fewest crossings.
//! 4. Coordinates: layers are columns as wide as their widest box; nodes are
//!    stacked in their layer's order and each layer is centred vertically.
//!    Edges are cubic Bézier curves through their dummy points.
//!
//! Everything is deterministic: the same input gives the same layout.

use std::fmt::Write as _;

/// Height of a node box.
pub(crate) const NODE_HEIGHT: f64 = 28.0;
/// Horizontal gap between two layers (where the edges curve).
const LAYER_GAP: f64 = 60.0;
/// Vertical gap between two boxes of a layer.
const NODE_GAP: f64 = 12.0;
/// Vertical room an edge passing through a layer takes.
const DUMMY_SLOT: f64 = 10.0;
/// Empty border around the drawing.
pub(crate) const MARGIN: f64 = 10.0;
/// Width of one label character (a 12px sans-serif font, on average).
const CHAR_WIDTH: f64 = 7.0;
/// Padding left and right of a label.
const PADDING: f64 = 10.0;
/// Longest label drawn in full; longer ones are cut with an ellipsis.
const MAX_LABEL_CHARS: usize = 36;
/// Sweeps (down and up) of the barycenter ordering.
const SWEEPS: usize = 12;
/// Most dummy points; a graph needing more draws long edges straight across.
pub(crate) const MAX_DUMMIES: usize = 20_000;

/// A laid-out graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    /// Width of the drawing.
    pub(crate) width: f64,
    /// Height of the drawing.
    pub(crate) height: f64,
    /// One box per input node, in input order.
    pub(crate) nodes: Vec<NodeBox>,
    /// One path per distinct input edge, in input order.
    pub(crate) edges: Vec<EdgePath>,
    /// How many layers the nodes take.
    pub(crate) layers: usize,
}

/// Where one node is drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeBox {
    /// Its layer (0 for roots).
    pub(crate) layer: usize,
    /// Left edge.
    pub(crate) x: f64,
    /// Top edge.
    pub(crate) y: f64,
    /// Width (from its label).
    pub(crate) width: f64,
    /// The label to write in it (cut when very long).
    pub(crate) label: String,
}

/// Where one edge is drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EdgePath {
    /// Index of the upstream node.
    pub(crate) from: usize,
    /// Index of the downstream node.
    pub(crate) to: usize,
    /// The SVG path data (`M … C …`).
    pub(crate) d: String,
}

/// `text` itself, or its first characters and an ellipsis when it has more than `max_chars`.
pub(crate) fn short_label(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Lays out `labels.len()` nodes and the edges `(upstream, downstream)` between them (indexes into
/// `labels`). Repeated edges are drawn once; edges naming no node, or closing a cycle, are drawn
/// without dummy points.
pub(crate) fn layout(labels: &[&str], edges: &[(usize, usize)]) -> Layout {
    let n = labels.len();
    let mut distinct: Vec<(usize, usize)> = Vec::with_capacity(edges.len());
    let mut seen = std::collections::HashSet::new();
    for &(from, to) in edges {
        if from < n && to < n && from != to && seen.insert((from, to)) {
            distinct.push((from, to));
        }
    }
    let layer = assign_layers(n, &distinct);
    let layer_count = layer.iter().copied().max().map_or(0, |l| l + 1);

    // The layered graph: real nodes, then dummy points; edges only between adjacent layers.
    let mut node_layer = layer.clone();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let dummies_needed: usize =
        distinct.iter().map(|&(f, t)| layer[t].saturating_sub(layer[f]).saturating_sub(1)).sum();
    let use_dummies = dummies_needed <= MAX_DUMMIES;
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(distinct.len());
    for &(from, to) in &distinct {
        let mut chain = vec![from];
        if layer[to] > layer[from] {
            if use_dummies {
                for l in layer[from] + 1..layer[to] {
                    node_layer.push(l);
                    succs.push(Vec::new());
                    preds.push(Vec::new());
                    chain.push(node_layer.len() - 1);
                }
            }
            chain.push(to);
            for pair in chain.windows(2) {
                if node_layer[pair[1]] == node_layer[pair[0]] + 1 {
                    succs[pair[0]].push(pair[1]);
                    preds[pair[1]].push(pair[0]);
                }
            }
        } else {
            chain.push(to);
        }
        chains.push(chain);
    }

    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for (v, &l) in node_layer.iter().enumerate() {
        layers[l].push(v);
    }
    order_layers(&mut layers, &preds, &succs, node_layer.len());

    // Coordinates.
    let node_labels: Vec<String> = labels.iter().map(|l| short_label(l, MAX_LABEL_CHARS)).collect();
    let width_of = |v: usize| -> f64 {
        if v < n {
            node_labels[v].chars().count() as f64 * CHAR_WIDTH + 2.0 * PADDING
        } else {
            0.0
        }
    };
    let slot = |v: usize| if v < n { NODE_HEIGHT } else { DUMMY_SLOT };
    let column: Vec<f64> = layers.iter().map(|vs| vs.iter().map(|&v| width_of(v)).fold(0.0_f64, f64::max)).collect();
    let mut layer_x = Vec::with_capacity(layer_count);
    let mut x = MARGIN;
    for width in &column {
        layer_x.push(x);
        x += width + LAYER_GAP;
    }
    let total_width = if layer_count == 0 { 2.0 * MARGIN } else { x - LAYER_GAP + MARGIN };
    let stack_height = |vs: &[usize]| -> f64 {
        let slots: f64 = vs.iter().map(|&v| slot(v)).sum();
        slots + NODE_GAP * vs.len().saturating_sub(1) as f64
    };
    let tallest = layers.iter().map(|vs| stack_height(vs)).fold(0.0_f64, f64::max);
    let mut center_y = vec![0.0; node_layer.len()];
    for vs in &layers {
        let mut y = MARGIN + (tallest - stack_height(vs)) / 2.0;
        for &v in vs {
            center_y[v] = y + slot(v) / 2.0;
            y += slot(v) + NODE_GAP;
        }
    }

    let nodes: Vec<NodeBox> = (0..n)
        .map(|v| NodeBox {
            layer: layer[v],
            x: layer_x[layer[v]],
            y: center_y[v] - NODE_HEIGHT / 2.0,
            width: width_of(v),
            label: node_labels[v].clone(),
        })
        .collect();
    let edges = distinct
        .iter()
        .zip(&chains)
        .map(|(&(from, to), chain)| {
            // Out of the box and straight to its column's edge, so no curve crosses a wider box of that layer.
            let mut points = Vec::with_capacity(2 * chain.len() + 1);
            points.push((layer_x[layer[from]] + width_of(from), center_y[from]));
            if width_of(from) < column[layer[from]] {
                points.push((layer_x[layer[from]] + column[layer[from]], center_y[from]));
            }
            for &dummy in &chain[1..chain.len() - 1] {
                let l = node_layer[dummy];
                points.push((layer_x[l], center_y[dummy]));
                points.push((layer_x[l] + column[l], center_y[dummy]));
            }
            points.push((layer_x[layer[to]], center_y[to]));
            EdgePath { from, to, d: path_data(&points) }
        })
        .collect();
    Layout { width: total_width, height: tallest + 2.0 * MARGIN, nodes, edges, layers: layer_count }
}

/// Each node's longest-path distance from a root. Nodes on a cycle (which a
/// validated DAG never has) go one layer after all the others.
fn assign_layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(from, to) in edges {
        indegree[to] += 1;
        out[from].push(to);
    }
    let mut layer = vec![0usize; n];
    let mut done = vec![false; n];
    let mut ready: std::collections::VecDeque<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    while let Some(v) = ready.pop_front() {
        done[v] = true;
        for &w in &out[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push_back(w);
            }
        }
    }
    let after = layer.iter().zip(&done).filter(|(_, d)| **d).map(|(l, _)| l + 1).max().unwrap_or(0);
    for v in 0..n {
        if !done[v] {
            layer[v] = after;
        }
    }
    layer
}

/// Orders each layer by barycenter sweeps, keeping the order with the fewest crossings.
fn order_layers(layers: &mut [Vec<usize>], preds: &[Vec<usize>], succs: &[Vec<usize>], count: usize) {
    let mut pos = vec![0usize; count];
    let index = |layers: &[Vec<usize>], pos: &mut [usize]| {
        for vs in layers {
            for (i, &v) in vs.iter().enumerate() {
                pos[v] = i;
            }
        }
    };
    index(layers, &mut pos);
    let mut best = layers.to_vec();
    let mut best_crossings = crossings(layers, succs, &pos);
    for sweep in 0..2 * SWEEPS {
        if best_crossings == 0 {
            break;
        }
        let down = sweep % 2 == 0;
        let order: Vec<usize> =
            if down { (1..layers.len()).collect() } else { (0..layers.len().saturating_sub(1)).rev().collect() };
        for l in order {
            let neighbours = if down { preds } else { succs };
            let mut keyed: Vec<(f64, usize, usize)> = layers[l]
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    let key = if ns.is_empty() {
                        pos[v] as f64
                    } else {
                        ns.iter().map(|&u| pos[u] as f64).sum::<f64>() / ns.len() as f64
                    };
                    (key, pos[v], v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            layers[l] = keyed.into_iter().map(|(_, _, v)| v).collect();
            for (i, &v) in layers[l].iter().enumerate() {
                pos[v] = i;
            }
        }
        let now = crossings(layers, succs, &pos);
        if now < best_crossings {
            best_crossings = now;
            best = layers.to_vec();
        }
    }
    layers.clone_from_slice(&best);
}

/// How many pairs of edges cross between adjacent layers (inversions, counted with a Fenwick tree).
fn crossings(layers: &[Vec<usize>], succs: &[Vec<usize>], pos: &[usize]) -> usize {
    let mut total = 0;
    for pair in layers.windows(2) {
        let mut ends: Vec<(usize, usize)> =
            pair[0].iter().flat_map(|&u| succs[u].iter().map(move |&w| (pos[u], pos[w]))).collect();
        ends.sort_unstable();
        let size = pair[1].len();
        let mut tree = vec![0usize; size + 1];
        for (seen, &(_, lower)) in ends.iter().enumerate() {
            let mut at_or_below = 0;
            let mut i = lower + 1;
            while i > 0 {
                at_or_below += tree[i];
                i -= i & i.wrapping_neg();
            }
            total += seen - at_or_below;
            let mut i = lower + 1;
            while i <= size {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

/// SVG path data through `points`: a horizontal-tangent cubic curve between
/// consecutive points, except a straight line across a layer (same height).
fn path_data(points: &[(f64, f64)]) -> String {
    let mut d = String::with_capacity(24 * points.len());
    let (x0, y0) = points[0];
    let _ = write!(d, "M{x0:.1} {y0:.1}");
    for pair in points.windows(2) {
        let ((x1, y1), (x2, y2)) = (pair[0], pair[1]);
        if y1 == y2 {
            let _ = write!(d, " L{x2:.1} {y2:.1}");
        } else {
            let mid = (x1 + x2) / 2.0;
            let _ = write!(d, " C{mid:.1} {y1:.1} {mid:.1} {y2:.1} {x2:.1} {y2:.1}");
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: &NodeBox, b: &NodeBox) -> bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + NODE_HEIGHT && b.y < a.y + NODE_HEIGHT
    }

    fn assert_sound(labels: &[&str], edges: &[(usize, usize)]) -> Layout {
        let layout = layout(labels, edges);
        assert_eq!(layout.nodes.len(), labels.len());
        for &(from, to) in edges {
            assert!(layout.nodes[to].layer > layout.nodes[from].layer, "edge {from}→{to} goes to a later layer");
        }
        for (i, a) in layout.nodes.iter().enumerate() {
            assert!(a.x >= 0.0 && a.y >= 0.0 && a.x + a.width <= layout.width && a.y + NODE_HEIGHT <= layout.height);
            for b in &layout.nodes[i + 1..] {
                assert!(!overlaps(a, b), "{a:?} overlaps {b:?}");
            }
        }
        layout
    }

    #[test]
    fn a_diamond_takes_three_layers_with_its_middle_side_by_side() {
        let layout = assert_sound(&["a", "b", "c", "d"], &[(0, 1), (0, 2), (1, 3), (2, 3)]);
        assert_eq!(layout.layers, 3);
        let layers: Vec<usize> = layout.nodes.iter().map(|n| n.layer).collect();
        assert_eq!(layers, [0, 1, 1, 2]);
        assert_eq!(layout.nodes[1].x, layout.nodes[2].x);
        assert_ne!(layout.nodes[1].y, layout.nodes[2].y);
        assert_eq!(layout.edges.len(), 4);
    }

    #[test]
    fn a_layer_is_the_longest_path_from_a_root() {
        // a → b → c and a → c: c comes after b, not beside it.
        let layout = assert_sound(&["a", "b", "c"], &[(0, 1), (1, 2), (0, 2)]);
        assert_eq!(layout.nodes.iter().map(|n| n.layer).collect::<Vec<_>>(), [0, 1, 2]);
        // The long edge a → c bends through a dummy point beside b: a curve, a line across, a curve.
        let long = &layout.edges[2];
        assert_eq!((long.from, long.to), (0, 2));
        assert_eq!(long.d.matches('C').count(), 2, "{}", long.d);
        assert_eq!(long.d.matches('L').count(), 1, "{}", long.d);
    }

    #[test]
    fn barycenter_sweeps_remove_a_needless_crossing() {
        // a → d and b → c with c listed before d: drawn in input order the two edges cross.
        let labels = ["a", "b", "c", "d"];
        let edges = [(0, 3), (1, 2)];
        let layout = assert_sound(&labels, &edges);
        let (a, b, c, d) = (&layout.nodes[0], &layout.nodes[1], &layout.nodes[2], &layout.nodes[3]);
        assert_eq!(a.y < b.y, d.y < c.y, "the edges do not cross");
    }

    #[test]
    fn the_same_graph_gets_the_same_layout() {
        let labels: Vec<String> = (0..40).map(|i| format!("task_{i}")).collect();
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let edges: Vec<(usize, usize)> = (1..40).flat_map(|i| [((i * 7 + 3) % i, i), ((i * 13 + 5) % i, i)]).collect();
        let first = assert_sound(&labels, &edges);
        assert_eq!(first, layout(&labels, &edges));
    }

    #[test]
    fn wide_layers_do_not_overlap_and_long_labels_are_cut() {
        let long = "x".repeat(200);
        let mut labels = vec!["root", long.as_str()];
        labels.extend(["p", "q", "r", "s", "t"]);
        let edges: Vec<(usize, usize)> = (1..labels.len()).map(|i| (0, i)).collect();
        let layout = assert_sound(&labels, &edges);
        assert_eq!(layout.nodes[1].label.chars().count(), MAX_LABEL_CHARS);
        assert!(layout.nodes[1].label.ends_with('…'));
    }

    #[test]
    fn cycles_and_bad_edges_neither_hang_nor_panic() {
        let layout = layout(&["a", "b", "c"], &[(0, 1), (1, 2), (2, 1), (0, 9), (2, 2), (0, 1)]);
        assert_eq!(layout.nodes.len(), 3);
        assert_eq!(layout.edges.len(), 3);
        assert_eq!(super::layout(&[], &[]).nodes.len(), 0);
    }

    #[test]
    fn crossings_are_counted_between_adjacent_layers() {
        // Layer 0: u0, u1; layer 1: w0, w1; edges u0→w1, u1→w0 cross once.
        let layers = vec![vec![0, 1], vec![2, 3]];
        let succs = vec![vec![3], vec![2], vec![], vec![]];
        assert_eq!(crossings(&layers, &succs, &[0, 1, 0, 1]), 1);
        let succs = vec![vec![2], vec![3], vec![], vec![]];
        assert_eq!(crossings(&layers, &succs, &[0, 1, 0, 1]), 0);
    }
}
