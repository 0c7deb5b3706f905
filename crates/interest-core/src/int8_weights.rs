//! Keeps a model's int8 weights int8 at run time. A weight-only int8
//! export stores each weight matrix as `Mul(Cast(int8 W), scale)`; ONNX
//! Runtime folds that constant into an fp32 matrix (four times the bytes)
//! when it optimizes the graph. Rewritten, the weights stay int8: a matrix
//! a MatMul reads becomes ONNX Runtime's `MatMulNBits` with 8 bits (widened
//! block by block inside the kernel), an embedding table a Gather reads is
//! gathered as int8 rows and only those rows are widened. Each weight is
//! still exactly `W * scale`, at a quarter of the memory; the wide
//! matrices multiply with int8 activations (`accuracy_level`).

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_proto::DataType,
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
};
use std::collections::{HashMap, HashSet};

/// Where `MatMulNBits` is defined.
const CONTRIB_DOMAIN: &str = "com.microsoft";

/// `MatMulNBits` stores an 8-bit weight as `w + 128` (its default zero point).
const ZERO_POINT: i16 = 128;

/// The model bytes with every int8 weight matrix of a MatMul or Gather
/// kept int8, and how many were; None when the model has none (or is not one this
/// rewrite understands, e.g. weights in external files).
pub fn keep_int8_weights(model: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut m = ModelProto::parse_from_bytes(model).ok()?;
    let graph = m.graph.as_mut()?;
    let count = rewrite_graph(graph);
    if count == 0 {
        return None;
    }
    if !m.opset_import.iter().any(|o| o.domain == CONTRIB_DOMAIN) {
        let mut opset = OperatorSetIdProto::new();
        opset.domain = CONTRIB_DOMAIN.into();
        opset.version = 1;
        m.opset_import.push(opset);
    }
    Some((m.write_to_bytes().ok()?, count))
}

/// How a widened int8 matrix is read.
#[derive(Clone, Copy, PartialEq)]
enum Reader {
    /// `MatMul(x, W)`: becomes `MatMulNBits`.
    MatMul,
    /// `Gather(W, ids)` on rows (an embedding table): gathers int8 rows and
    /// their scales first, then widens only those rows.
    Gather,
}

/// One `Mul(Cast(W), scale)` of an int8 initializer found in a graph, and
/// the node that reads it.
struct Int8Weight {
    reader: Reader,
    at: usize,
    /// The Mul and the Cast, by position.
    remove: [usize; 2],
    weight: String,
    scale: String,
}

/// A scale's shape against its K x N (rows x columns) matrix.
#[derive(Clone, Copy, PartialEq)]
enum ScaleShape {
    One,
    PerColumn,
    PerRow,
}

fn scale_shape(scale: &TensorProto, rows: i64, cols: i64) -> Option<ScaleShape> {
    let elements: i64 = scale.dims.iter().product();
    if scale.data_type != DataType::FLOAT as i32 {
        None
    } else if elements == 1 {
        Some(ScaleShape::One)
    } else if elements == cols && scale.dims.last() == Some(&cols) {
        Some(ScaleShape::PerColumn)
    } else if scale.dims == [rows, 1] {
        Some(ScaleShape::PerRow)
    } else {
        None
    }
}

fn rewrite_graph(g: &mut GraphProto) -> usize {
    if g.initializer
        .iter()
        .any(|t| t.data_location.enum_value() == Ok(DataLocation::EXTERNAL))
    {
        return 0;
    }
    let found = find_int8_weights(g);
    if found.is_empty() {
        return 0;
    }
    let inits: HashMap<&str, &TensorProto> =
        g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut replaced: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut new_inits = Vec::new();
    let mut removed_nodes: HashSet<usize> = HashSet::new();
    for f in &found {
        let (w, scale) = (inits[&*f.weight], inits[&*f.scale]);
        let nodes = match f.reader {
            Reader::MatMul => nbits_node(&g.node[f.at], w, scale).map(|(node, b, scales)| {
                new_inits.extend([b, scales]);
                vec![node]
            }),
            Reader::Gather => gather_nodes(&g.node[f.at], w, scale),
        };
        if let Some(nodes) = nodes {
            replaced.insert(f.at, nodes);
            removed_nodes.extend(f.remove);
        }
    }
    let count = replaced.len();
    let nodes = std::mem::take(&mut g.node);
    g.node = nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !removed_nodes.contains(i))
        .flat_map(|(i, n)| replaced.remove(&i).unwrap_or_else(|| vec![n]))
        .collect();
    // Initializers nothing reads any more (the int8 matrices, their scales).
    let used: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(g.output.iter().map(|o| o.name.as_str()))
        .collect();
    let used: HashSet<String> = used.into_iter().map(str::to_string).collect();
    let unused: HashSet<String> = g
        .initializer
        .iter()
        .filter(|t| !used.contains(&t.name))
        .map(|t| t.name.clone())
        .collect();
    g.initializer.retain(|t| !unused.contains(&t.name));
    // Older models also list initializers as graph inputs.
    g.input.retain(|i| !unused.contains(&i.name));
    g.initializer.extend(new_inits);
    let produced: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    let produced: HashSet<String> = produced.into_iter().map(str::to_string).collect();
    g.value_info.retain(|v| produced.contains(&v.name));
    count
}

fn find_int8_weights(g: &GraphProto) -> Vec<Int8Weight> {
    let inits: HashMap<&str, &TensorProto> =
        g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let producer: HashMap<&str, usize> = g
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for name in g
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(g.output.iter().map(|o| &o.name))
    {
        *readers.entry(name.as_str()).or_default() += 1;
    }
    let only_reader = |name: &str| readers.get(name) == Some(&1);
    let mut found = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let gather_axis = n
            .attribute
            .iter()
            .find(|a| a.name == "axis")
            .map_or(0, |a| a.i);
        let (reader, matrix) = match n.op_type.as_str() {
            "MatMul" if n.input.len() == 2 => (Reader::MatMul, &n.input[1]),
            "Gather" if n.input.len() == 2 && gather_axis == 0 => (Reader::Gather, &n.input[0]),
            _ => continue,
        };
        if !n.domain.is_empty() {
            continue;
        }
        let Some(&mul_at) = producer.get(matrix.as_str()) else {
            continue;
        };
        let mul = &g.node[mul_at];
        if mul.op_type != "Mul"
            || !mul.domain.is_empty()
            || mul.input.len() != 2
            || !only_reader(&mul.output[0])
        {
            continue;
        }
        let is_cast = |at: usize| g.node[at].op_type == "Cast";
        let (cast_at, cast_out, scale) = match (
            producer.get(mul.input[0].as_str()),
            producer.get(mul.input[1].as_str()),
        ) {
            (Some(&c), None) if is_cast(c) => (c, &mul.input[0], &mul.input[1]),
            (None, Some(&c)) if is_cast(c) => (c, &mul.input[1], &mul.input[0]),
            _ => continue,
        };
        let cast = &g.node[cast_at];
        let to_float = cast
            .attribute
            .iter()
            .any(|a| a.name == "to" && a.i == DataType::FLOAT as i64);
        if !cast.domain.is_empty() || cast.input.len() != 1 || !to_float || !only_reader(cast_out) {
            continue;
        }
        let weight = &cast.input[0];
        let (Some(w), Some(s)) = (inits.get(weight.as_str()), inits.get(scale.as_str())) else {
            continue;
        };
        if w.data_type != DataType::INT8 as i32 || w.dims.len() != 2 || !only_reader(weight) {
            continue;
        }
        let fits = matches!(
            (reader, scale_shape(s, w.dims[0], w.dims[1])),
            (
                Reader::MatMul,
                Some(ScaleShape::One | ScaleShape::PerColumn)
            ) | (Reader::Gather, Some(_))
        );
        if !fits {
            continue;
        }
        found.push(Int8Weight {
            reader,
            at: i,
            remove: [mul_at, cast_at],
            weight: weight.clone(),
            scale: scale.clone(),
        });
    }
    found
}

/// `Gather(Mul(Cast(w), scale), ids)` as `Mul(Cast(Gather(w, ids)), s)`,
/// where s is the scale, or the gathered rows' scales when there is one per
/// row: the same values, with only the gathered rows widened.
fn gather_nodes(
    gather: &NodeProto,
    w: &TensorProto,
    scale: &TensorProto,
) -> Option<Vec<NodeProto>> {
    let shape = scale_shape(scale, w.dims[0], w.dims[1])?;
    let out = &gather.output[0];
    let name = |suffix: &str| format!("{out}_{suffix}");
    let node = |op: &str, suffix: &str, inputs: Vec<String>, output: String| {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = name(suffix);
        n.input = inputs;
        n.output = vec![output];
        n
    };
    let ids = gather.input[1].clone();
    let mut nodes = vec![node(
        "Gather",
        "int8_rows",
        vec![w.name.clone(), ids.clone()],
        name("int8_rows"),
    )];
    let mut cast = node(
        "Cast",
        "int8_widened",
        vec![name("int8_rows")],
        name("int8_widened"),
    );
    cast.attribute
        .push(int_attribute("to", DataType::FLOAT as i64));
    nodes.push(cast);
    let row_scales = if shape == ScaleShape::PerRow {
        nodes.push(node(
            "Gather",
            "int8_row_scales",
            vec![scale.name.clone(), ids],
            name("int8_row_scales"),
        ));
        name("int8_row_scales")
    } else {
        scale.name.clone()
    };
    nodes.push(node(
        "Mul",
        "int8_scaled",
        vec![name("int8_widened"), row_scales],
        out.clone(),
    ));
    Some(nodes)
}

/// The `MatMulNBits` node for `matmul` with int8 `w` (K x N) and `scale`
/// (one per column, or one), and its two new initializers.
fn nbits_node(
    matmul: &NodeProto,
    w: &TensorProto,
    scale: &TensorProto,
) -> Option<(NodeProto, TensorProto, TensorProto)> {
    let (k, n) = (
        usize::try_from(w.dims[0]).ok()?,
        usize::try_from(w.dims[1]).ok()?,
    );
    let (block, accuracy_level) = arithmetic(k, n)?;
    let weights = int8_values(w)?;
    let scales = float_values(scale)?;
    if weights.len() != k * n {
        return None;
    }
    // B is N x (K / block) x block: row n holds column n of W.
    let mut b = Vec::with_capacity(k * n);
    for col in 0..n {
        b.extend((0..k).map(|row| (weights[row * n + col] as i16 + ZERO_POINT) as u8));
    }
    let blocks = k / block;
    let per_block: Vec<f32> = (0..n)
        .flat_map(|col| {
            std::iter::repeat_n(scales[if scales.len() == 1 { 0 } else { col }], blocks)
        })
        .collect();
    // Outputs are unique in a graph; node names need not be.
    let name = |suffix: &str| format!("{}_{suffix}", matmul.output[0]);
    let mut b_tensor = TensorProto::new();
    b_tensor.name = name("int8_weights");
    b_tensor.data_type = DataType::UINT8 as i32;
    b_tensor.dims = vec![n as i64, blocks as i64, block as i64];
    b_tensor.raw_data = b;
    let mut s_tensor = TensorProto::new();
    s_tensor.name = name("int8_scales");
    s_tensor.data_type = DataType::FLOAT as i32;
    s_tensor.dims = vec![per_block.len() as i64];
    s_tensor.raw_data = per_block.iter().flat_map(|v| v.to_le_bytes()).collect();

    let mut node = NodeProto::new();
    node.name = matmul.name.clone();
    node.op_type = "MatMulNBits".into();
    node.domain = CONTRIB_DOMAIN.into();
    node.input = vec![
        matmul.input[0].clone(),
        b_tensor.name.clone(),
        s_tensor.name.clone(),
    ];
    node.output = matmul.output.clone();
    node.attribute = vec![
        int_attribute("K", k as i64),
        int_attribute("N", n as i64),
        int_attribute("bits", 8),
        int_attribute("block_size", block as i64),
        int_attribute("accuracy_level", accuracy_level),
    ];
    Some((node, b_tensor, s_tensor))
}

/// `MatMulNBits`'s block size and `accuracy_level` for a K x N weight;
/// None when K is not a multiple of the smallest block. The square
/// matrices of a BERT-style layer (the attention projections) keep fp32
/// arithmetic, in the largest block K allows. The wide ones (the
/// feed-forward expansion and contraction, most of the multiply-adds)
/// multiply int8 by int8, which is faster than widening the weights; the
/// kernel quantizes activations per block, so they take the smallest
/// block, which moves the embeddings least (quantizing the attention too,
/// or larger blocks, moves them past what `tests/pg_regress/sql/embed.sql`
/// allows against the reference).
pub fn arithmetic(k: usize, n: usize) -> Option<(usize, i64)> {
    const FP32: i64 = 0;
    const INT8: i64 = 4;
    const BLOCKS: [usize; 4] = [128, 64, 32, 16];
    if k == n {
        let block = BLOCKS.into_iter().find(|&b| k.is_multiple_of(b))?;
        Some((block, FP32))
    } else {
        let smallest = BLOCKS[BLOCKS.len() - 1];
        k.is_multiple_of(smallest).then_some((smallest, INT8))
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

fn int8_values(t: &TensorProto) -> Option<Vec<i8>> {
    if !t.raw_data.is_empty() {
        Some(t.raw_data.iter().map(|&b| b as i8).collect())
    } else {
        t.int32_data.iter().map(|&v| i8::try_from(v).ok()).collect()
    }
}

fn float_values(t: &TensorProto) -> Option<Vec<f32>> {
    if !t.raw_data.is_empty() {
        t.raw_data.len().is_multiple_of(4).then(|| {
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
    } else {
        Some(t.float_data.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, data_type: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = data_type as i32;
        t.dims = dims.to_vec();
        t.raw_data = raw;
        t
    }

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = format!("{op}_{output}");
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.into()];
        n
    }

    /// y = x . (Cast(w) * scale) with w K x N int8, one scale per column.
    fn model(
        k: usize,
        n: usize,
        scale_dims: &[i64],
        extra_reader: bool,
    ) -> (Vec<u8>, Vec<i8>, Vec<f32>) {
        let w: Vec<i8> = (0..k * n).map(|i| ((i * 37) % 255) as i16 as i8).collect();
        let scales: Vec<f32> = (0..scale_dims.iter().product::<i64>())
            .map(|i| 0.01 * (i + 1) as f32)
            .collect();
        let mut g = GraphProto::new();
        g.initializer.push(tensor(
            "w",
            DataType::INT8,
            &[k as i64, n as i64],
            w.iter().map(|&v| v as u8).collect(),
        ));
        g.initializer.push(tensor(
            "s",
            DataType::FLOAT,
            scale_dims,
            scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        let mut cast = node("Cast", &["w"], "wf");
        cast.attribute
            .push(int_attribute("to", DataType::FLOAT as i64));
        g.node.push(cast);
        g.node.push(node("Mul", &["wf", "s"], "ws"));
        g.node.push(node("MatMul", &["x", "ws"], "y"));
        if extra_reader {
            g.node.push(node("Identity", &["wf"], "z"));
        }
        let mut m = ModelProto::new();
        m.graph = Some(g).into();
        (m.write_to_bytes().unwrap(), w, scales)
    }

    #[test]
    fn an_int8_matmul_becomes_matmulnbits_with_the_same_weights() {
        let (k, n) = (64, 3);
        let (bytes, w, scales) = model(k, n, &[1, n as i64], false);
        let (out, count) = keep_int8_weights(&bytes).expect("rewritten");
        assert_eq!(count, 1);
        let m = ModelProto::parse_from_bytes(&out).unwrap();
        let g = m.graph.as_ref().unwrap();
        assert_eq!(g.node.len(), 1);
        let node = &g.node[0];
        assert_eq!(
            (node.op_type.as_str(), node.domain.as_str()),
            ("MatMulNBits", CONTRIB_DOMAIN)
        );
        assert_eq!(node.output, vec!["y".to_string()]);
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name).unwrap().i;
        assert_eq!(
            (
                attr("K"),
                attr("N"),
                attr("bits"),
                attr("block_size"),
                attr("accuracy_level")
            ),
            (64, 3, 8, 16, 4)
        );
        assert!(
            g.initializer.iter().all(|t| t.name != "w" && t.name != "s"),
            "old weights dropped"
        );
        let b = g
            .initializer
            .iter()
            .find(|t| t.name == node.input[1])
            .unwrap();
        assert_eq!(b.dims, vec![3, 4, 16]);
        let s = g
            .initializer
            .iter()
            .find(|t| t.name == node.input[2])
            .unwrap();
        let s = float_values(s).unwrap();
        // Every weight decodes to exactly what Cast and Mul made of it.
        for row in 0..k {
            for col in 0..n {
                let q = b.raw_data[col * k + row] as i16 - ZERO_POINT;
                let scale = s[col * (k / 16) + row / 16];
                assert_eq!(q as f32 * scale, w[row * n + col] as f32 * scales[col]);
            }
        }
        assert!(m.opset_import.iter().any(|o| o.domain == CONTRIB_DOMAIN));
    }

    #[test]
    fn one_scale_for_the_whole_matrix_is_repeated() {
        let (bytes, _, scales) = model(32, 2, &[], false);
        let (out, _) = keep_int8_weights(&bytes).unwrap();
        let g = ModelProto::parse_from_bytes(&out).unwrap().graph.unwrap();
        let s = g
            .initializer
            .iter()
            .find(|t| t.name == "y_int8_scales")
            .unwrap();
        // Two columns of two blocks of 16.
        assert_eq!(float_values(s).unwrap(), vec![scales[0]; 4]);
    }

    #[test]
    fn square_matrices_keep_fp32_arithmetic_and_wide_ones_take_int8() {
        assert_eq!(arithmetic(384, 384), Some((128, 0)));
        assert_eq!(arithmetic(96, 96), Some((32, 0)));
        assert_eq!(arithmetic(384, 1536), Some((16, 4)));
        assert_eq!(arithmetic(1536, 384), Some((16, 4)));
        assert_eq!(arithmetic(40, 40), None);
        assert_eq!(arithmetic(40, 80), None);
    }

    #[test]
    fn an_int8_embedding_table_is_gathered_before_it_is_widened() {
        let mut g = GraphProto::new();
        g.initializer.push(tensor(
            "e",
            DataType::INT8,
            &[5, 4],
            (0..20).map(|v| v as u8).collect(),
        ));
        g.initializer.push(tensor(
            "s",
            DataType::FLOAT,
            &[5, 1],
            (0..5).flat_map(|v| (v as f32).to_le_bytes()).collect(),
        ));
        let mut cast = node("Cast", &["e"], "ef");
        cast.attribute
            .push(int_attribute("to", DataType::FLOAT as i64));
        g.node.push(cast);
        g.node.push(node("Mul", &["ef", "s"], "es"));
        g.node.push(node("Gather", &["es", "ids"], "y"));
        let mut m = ModelProto::new();
        m.graph = Some(g).into();
        let (out, count) = keep_int8_weights(&m.write_to_bytes().unwrap()).unwrap();
        assert_eq!(count, 1);
        let g = ModelProto::parse_from_bytes(&out).unwrap().graph.unwrap();
        let ops: Vec<(&str, Vec<&str>)> = g
            .node
            .iter()
            .map(|n| {
                (
                    n.op_type.as_str(),
                    n.input.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            ops,
            vec![
                ("Gather", vec!["e", "ids"]),
                ("Cast", vec!["y_int8_rows"]),
                ("Gather", vec!["s", "ids"]),
                ("Mul", vec!["y_int8_widened", "y_int8_row_scales"]),
            ]
        );
        assert_eq!(g.node[3].output, vec!["y".to_string()]);
        let kept: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(kept, vec!["e", "s"], "the table stays int8");
    }

    #[test]
    fn graphs_it_does_not_understand_are_left_alone() {
        assert!(keep_int8_weights(b"not a model").is_none());
        // The widened matrix is read elsewhere too.
        assert!(keep_int8_weights(&model(64, 3, &[1, 3], true).0).is_none());
        // A scale per row, not per column.
        assert!(keep_int8_weights(&model(64, 3, &[64, 1], false).0).is_none());
        // K with no block size that divides it.
        assert!(keep_int8_weights(&model(24, 3, &[1, 3], false).0).is_none());
    }
}
