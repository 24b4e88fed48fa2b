//! Graph checks on a DAG's dependencies: topological order and cycle paths.

use std::collections::HashMap;

/// Orders `nodes` so every node follows its upstreams, or returns one cycle
/// as a path whose first and last element are the same task.
pub(crate) fn topological_order<'a>(nodes: &[(&'a str, Vec<&'a str>)]) -> Result<Vec<&'a str>, Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect();
    let mut marks = vec![Mark::New; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    let mut path: Vec<usize> = Vec::new();

    for start in 0..nodes.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS over upstream edges; each frame is (node, next upstream to visit).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        path.push(start);
        while let Some((node, next)) = stack.last_mut() {
            let ups = &nodes[*node].1;
            if *next < ups.len() {
                let up = index[ups[*next]];
                *next += 1;
                match marks[up] {
                    Mark::New => {
                        marks[up] = Mark::OnPath;
                        path.push(up);
                        stack.push((up, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|&n| n == up).unwrap_or(0);
                        // Path runs downstream → upstream; print it in dependency order.
                        let mut cycle: Vec<&str> = path[from..].iter().map(|&n| nodes[n].0).collect();
                        cycle.reverse();
                        cycle.push(cycle[0]);
                        return Err(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[*node] = Mark::Done;
                order.push(nodes[*node].0);
                path.pop();
                stack.pop();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_come_before_their_downstreams() {
        let nodes = vec![("d", vec!["b", "c"]), ("b", vec!["a"]), ("c", vec!["a"]), ("a", vec![])];
        let order = topological_order(&nodes).unwrap();
        let pos = |n| order.iter().position(|x| *x == n).unwrap();
        assert!(pos("a") < pos("b") && pos("a") < pos("c") && pos("b") < pos("d") && pos("c") < pos("d"));
    }

    #[test]
    fn a_cycle_is_reported_as_a_closed_path() {
        let nodes = vec![("a", vec!["c"]), ("b", vec!["a"]), ("c", vec!["b"]), ("x", vec![])];
        let cycle = topological_order(&nodes).unwrap_err();
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4, "{cycle:?}");
    }
}
